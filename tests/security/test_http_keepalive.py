"""Keep-alive across every kind of answer (issue 12, finding 20).

One HTTP/1.1 connection over the daemon's unix socket carries, in turn, plain
JSON, 204s, 404/400 errors, chunked streams (logs, events with until, docker cp
out, image save), a body upload (docker cp in) and plain requests after them.
A chunked answer used to leave its read-side watcher running, so the next
request on the connection was reset and the daemon logged
``RuntimeError: read() called while another coroutine is already waiting``.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
import time

API = "/v1.44"


class UnixConnection(http.client.HTTPConnection):
    """http.client over the daemon's unix socket, counting the sockets it opens."""

    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=30)
        self.path = path
        self.opened = 0

    def connect(self) -> None:
        self.opened += 1
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


def call(conn: UnixConnection, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn.request(method, API + path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    assert not resp.will_close, f"{method} {path} closed the connection: {resp.getheaders()}"
    return resp.status, data


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_every_answer_kind_on_one_connection(d):
    api = d.api()
    cid = api.create_container("busybox", ["sh", "-c", "echo hello; echo oops >&2"])["Id"]
    try:
        api.start(cid)
        api.wait(cid, timeout=30)
        until = int(time.time()) + 1
        conn = UnixConnection(d.socket)
        for _ in range(3):  # each kind twice over and mixed, so each one is followed by every other
            assert call(conn, "GET", "/_ping") == (200, b"OK")
            status, body = call(conn, "GET", "/version")
            assert status == 200 and json.loads(body)["ApiVersion"]
            assert call(conn, "GET", "/containers/no-such-container/json")[0] == 404
            assert call(conn, "GET", "/containers/json?filters=notjson")[0] == 400
            status, body = call(conn, "GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
            assert status == 200 and b"hello" in body and b"oops" in body
            status, body = call(conn, "GET", f"/events?since=0&until={until}")
            assert status == 200 and b'"start"' in body
            status, body = call(conn, "GET", f"/containers/{cid}/archive?path=/etc/hostname")
            assert status == 200 and tarfile.open(fileobj=io.BytesIO(body)).getnames() == ["hostname"]
            status, body = call(conn, "GET", "/images/get?names=busybox")
            assert status == 200 and "manifest.json" in tarfile.open(fileobj=io.BytesIO(body)).getnames()
            assert call(conn, "PUT", f"/containers/{cid}/archive?path=/tmp", _tar("up.txt", b"x" * 300_000),
                        {"Content-Type": "application/x-tar"})[0] == 200
            assert call(conn, "POST", f"/containers/{cid}/stop")[0] == 304
            status, body = call(conn, "GET", f"/containers/{cid}/json")
            assert status == 200 and json.loads(body)["Id"] == cid
        assert conn.opened == 1
        conn.close()
    finally:
        api.remove_container(cid, force=True)
    log = d.log()
    assert "Traceback" not in log and "RuntimeError" not in log, log
