"""A worker done before its request body's end (a load tar with trailing bytes) leaves nothing parked."""

from __future__ import annotations

import os
import socket

import requests

TRAILING = 40 * 1024 * 1024  # more than BodyReader.PREFETCH: the read-ahead fills up and waits


class _UnixAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):  # type: ignore[override]
        from urllib3.connectionpool import HTTPConnectionPool
        from urllib3.connection import HTTPConnection
        path = self.path

        class Conn(HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(60)
                self.sock.connect(path)

        class Pool(HTTPConnectionPool):
            ConnectionCls = Conn

        return Pool("localhost")


def test_load_with_trailing_bytes_answers_and_daemon_stays_responsive(d, busybox_tar) -> None:
    with open(busybox_tar.path, "rb") as f:
        body = f.read() + os.urandom(TRAILING)
    s = requests.Session()
    s.mount("http://d/", _UnixAdapter(d.socket))
    res = s.post("http://d/v1.44/images/load?quiet=1", data=body,
                 headers={"Content-Type": "application/x-tar"}, timeout=60)
    assert res.status_code == 200, res.text
    # the connection was read away or closed; a new request is served either way
    assert s.get("http://d/v1.44/version", timeout=30).status_code == 200
    assert d.cli("images", "-q").stdout_text.strip()
    assert "Traceback" not in d.log()


def test_archive_put_with_trailing_bytes_answers(d) -> None:
    import io
    import tarfile
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout_text.strip()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    s = requests.Session()
    s.mount("http://d/", _UnixAdapter(d.socket))
    res = s.put(f"http://d/v1.44/containers/{cid}/archive?path=/tmp", data=buf.getvalue() + os.urandom(TRAILING),
                headers={"Content-Type": "application/x-tar"}, timeout=60)
    assert res.status_code == 200, res.text
    assert s.get("http://d/v1.44/version", timeout=30).status_code == 200
    assert d.cli("exec", cid, "cat", "/tmp/hello").stdout_text == "hello"
    d.cli("rm", "-f", cid)
