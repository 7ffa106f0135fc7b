"""The daemon's TCP+TLS listener on its own, in process, with short time limits.

The server side is exactly what dockyardd runs for tcp:// (TCPListener with the
context daemon.tls builds, in front of HTTPServer); the client is a TLS engine
on memory BIOs over a plain socket, so that the test decides exactly what goes
on the wire: a close_notify without closing, a bare FIN, plain HTTP, silence.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.httpd import server as dyhttp
from dockyard.httpd.server import HijackResponse, HTTPServer, RawStream, Request, json_response
from dockyard.api.router import App, get, post
from dockyard.daemon import config as cfg
from dockyard.daemon import tcp, tls
from dockyard.util.tlscerts import pki
from dockyard.util.tlscerts.layout import CertDir


async def _upper_echo(request: Request) -> HijackResponse:
    async def run(stream: RawStream) -> None:
        while True:
            data = await stream.read()
            if not data:
                break
            await stream.write(data.upper())
        # output that comes after the client's half-close, as a container's does
        for _ in range(3):
            await asyncio.sleep(0.05)
            await stream.write(b"<late>")
        await stream.write(b"<eof>")
        stream.close()

    return HijackResponse(run)


async def _hello(request: Request):
    return json_response({"hello": request.q("name")})


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertDir:
    d = CertDir(tmp_path_factory.mktemp("certs"))
    d.create(["localhost"], [ipaddress.ip_address("127.0.0.1")])
    return d


class Served:
    def __init__(self, certs: CertDir, **limits: Any) -> None:
        conf = cfg.DaemonConfig(tls=True, tlsverify=True, tlscacert=str(certs.file("ca.pem")),
                                tlscert=str(certs.file("server-cert.pem")),
                                tlskey=str(certs.file("server-key.pem")))
        self.loop = asyncio.new_event_loop()
        self.http = HTTPServer(App([post("/echo", _upper_echo), get("/hello", _hello)]),
                               lambda: [("Api-Version", "1.50")])
        self.listener = tcp.TCPListener(self.http.handle, tls.server_context(conf), **limits)
        self.loop.run_until_complete(self.listener.start("127.0.0.1", 0))
        self.port = self.listener.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def open_connections(self) -> int:
        return asyncio.run_coroutine_threadsafe(self._count(), self.loop).result(5)

    async def _count(self) -> int:
        return self.listener.open_connections

    def wait_connections(self, n: int, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while (count := self.open_connections()) != n and time.monotonic() < deadline:
            time.sleep(0.02)
        return count

    def close(self) -> None:
        async def shut() -> None:
            self.listener.close()
            await self.http.close_connections(0.5)
            await asyncio.sleep(0.1)  # let cancelled connections unwind
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def served(certs: CertDir):
    s = Served(certs, handshake_timeout=1.0)
    yield s
    s.close()


def client_context(certs: CertDir, with_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.file("ca.pem")))
    if with_cert:
        ctx.load_cert_chain(str(certs.file("cert.pem")), str(certs.file("key.pem")))
    return ctx


class BioClient:
    """TLS over a plain socket through memory BIOs: every record it sends is the test's choice."""

    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pump():
                    raise ConnectionError("server closed during the handshake")
        self._flush()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _pump(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def close_notify(self) -> None:
        """What Go's tls.Conn.CloseWrite does: send close_notify, keep the socket open."""
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def fin(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def closed_by_server(self, wait: float) -> bool:
        """Whether the server ended the connection within ``wait`` seconds (session
        tickets and other handshake records do not count)."""
        if not select.select([self.sock], [], [], wait)[0]:
            return False
        if not self._pump():
            return True
        try:
            return self.tls.read(65536) == b""
        except ssl.SSLWantReadError:
            return False
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return True

    def read_all(self) -> bytes:
        out = b""
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                if not self._pump():
                    return out
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return out
            if not chunk:
                return out
            out += chunk

    def close(self) -> None:
        self.sock.close()


HIJACK = (b"POST /v1.50/echo HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
          b"Content-Length: 0\r\n\r\n")


@pytest.mark.parametrize("half_close", ["close_notify", "fin"])
def test_hijacked_stream_keeps_writing_after_client_half_close(served, certs, half_close):
    c = BioClient(served.port, client_context(certs))
    c.send(HIJACK + b"hi ")
    c.send(b"there")
    time.sleep(0.1)
    c.close_notify() if half_close == "close_notify" else c.fin()
    head, _, body = c.read_all().partition(b"\r\n\r\n")
    c.close()
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert body == b"HI THERE<late><late><late><eof>"
    assert served.wait_connections(0) == 0


def test_big_hijack_then_close_notify(served, certs):
    c = BioClient(served.port, client_context(certs))
    c.send(HIJACK)
    c.send(b"x" * 300000)
    c.close_notify()
    body = c.read_all().partition(b"\r\n\r\n")[2]
    c.close()
    assert body == b"X" * 300000 + b"<late>" * 3 + b"<eof>"


def test_keep_alive_requests_then_close_notify_ends_connection(served, certs):
    c = BioClient(served.port, client_context(certs))
    for name in ("a", "b"):
        c.send(f"GET /hello?name={name} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    c.close_notify()
    data = c.read_all()
    c.close()
    assert data.count(b"HTTP/1.1 200") == 2 and b'"hello": "b"' in data
    assert served.wait_connections(0) == 0


def test_plain_http_to_tls_port_is_told_at_once(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data == tcp.HTTP_ON_TLS_REPLY
    assert time.monotonic() - started < 0.5
    assert served.wait_connections(0) == 0


@pytest.mark.parametrize("sends", [b"", b"\x16\x03\x01"])
def test_silent_or_stalled_handshake_is_cut_off(served, sends):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(sends)
        while s.recv(4096):  # an alert may come before the close
            pass
        waited = time.monotonic() - started
    assert 0.8 < waited < 3.0, waited
    assert served.wait_connections(0) == 0


def test_handshake_failure_is_logged_and_leaves_nothing_behind(served, certs, caplog):
    caplog.set_level("INFO", logger="dockyard.api")
    for _ in range(20):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c = BioClient(served.port, client_context(certs, with_cert=False))
            # TLS 1.3: the server's verdict on the (missing) client cert arrives after the client's handshake
            c.send(b"GET /hello HTTP/1.1\r\nHost: docker\r\n\r\n")
            if not c.read_all():
                raise ConnectionError("closed")
    assert served.wait_connections(0) == 0
    assert "TLS handshake error from 127.0.0.1" in caplog.text
    assert "peer did not return a certificate" in caplog.text
    c = BioClient(served.port, client_context(certs))
    c.send(b"GET /hello?name=ok HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
    assert b'"hello": "ok"' in c.read_all()


def test_connections_per_listener_are_capped(certs):
    s = Served(certs, max_connections=3, handshake_timeout=5.0)
    idle = []
    try:
        for _ in range(3):
            c = BioClient(s.port, client_context(certs))
            idle.append(c)
        assert s.wait_connections(3) == 3
        # the fourth is left in the kernel's backlog: no handshake while the cap is reached
        waiting = socket.create_connection(("127.0.0.1", s.port), timeout=1)
        ctx = client_context(certs)
        with pytest.raises(TimeoutError):
            ctx.wrap_socket(waiting, server_hostname="localhost")
        waiting.close()
        assert s.open_connections() == 3
        idle.pop().close()
        c = BioClient(s.port, client_context(certs))
        c.send(b"GET /hello?name=x HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        assert b'"hello": "x"' in c.read_all()
    finally:
        for c in idle:
            c.close()
        s.close()


def test_idle_and_trickling_clients_time_out(served, certs, monkeypatch):
    monkeypatch.setattr(dyhttp, "IDLE_TIMEOUT", 0.6)
    c = BioClient(served.port, client_context(certs))
    c.send(b"GET /hello?name=a HTTP/1.1\r\nHost: docker\r\n\r\n")
    started = time.monotonic()
    assert b'"hello": "a"' in c.read_all()  # returns once the server closes the idle connection
    assert 0.5 < time.monotonic() - started < 2.0
    # a header sent a byte at a time never completes: the limit is for the whole request head
    c = BioClient(served.port, client_context(certs))
    started = time.monotonic()
    closed_after = None
    for byte in b"GET /hello HTTP/1.1\r\nHost: docker\r\nX-Slow: " + b"a" * 100:
        c.send(bytes([byte]))
        if c.closed_by_server(0.05):
            closed_after = time.monotonic() - started
            break
    assert closed_after is not None and closed_after < 1.5, closed_after
    assert served.wait_connections(0) == 0


def test_startup_refuses_bad_files_naming_them(certs, tmp_path: Path):
    good = dict(tls=True, tlsverify=True, tlscacert=str(certs.file("ca.pem")),
                tlscert=str(certs.file("server-cert.pem")), tlskey=str(certs.file("server-key.pem")))
    other = CertDir(tmp_path / "other")
    other.create(["localhost"], [])
    missing = str(tmp_path / "nope.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (dict(tlskey=missing), missing),
        (dict(tlscert=missing), missing),
        (dict(tlskey=str(other.file("server-key.pem"))), "does not match"),
        (dict(tlscacert=str(garbage)), str(garbage)),
        (dict(tlscacert=str(certs.file("ca-key.pem"))), str(certs.file("ca-key.pem"))),
        (dict(tlskey=str(garbage)), str(garbage)),
    ]
    for change, expected in cases:
        with pytest.raises(cfg.ConfigError, match=None) as e:
            tls.server_context(cfg.DaemonConfig(**{**good, **change}))
        assert expected in str(e.value), (change, str(e.value))
    # --tls alone: no client certificate asked for, the CA is not needed
    ctx = tls.server_context(cfg.DaemonConfig(**{**good, "tlsverify": False, "tlscacert": missing}))
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE
    assert tls.server_context(cfg.DaemonConfig(**good)).verify_mode == ssl.CERT_REQUIRED


def test_issued_certificates_say_what_they_are_for(certs):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server = x509.load_pem_x509_certificate(certs.file("server-cert.pem").read_bytes())
    client = x509.load_pem_x509_certificate(certs.file("cert.pem").read_bytes())
    eku = lambda c: list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)  # noqa: E731
    assert eku(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert eku(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert pki.san_of(server) == (["localhost"], [ipaddress.ip_address("127.0.0.1")])
    for key in ("ca-key.pem", "key.pem", "server-key.pem"):
        assert certs.file(key).stat().st_mode & 0o777 == 0o600


def test_tcp_host_parsing_follows_dockerd():
    from dockyard.daemon.main import split_tcp_host

    assert split_tcp_host("tcp://10.0.0.1", 2376) == ("10.0.0.1", 2376)
    assert split_tcp_host("tcp://:2375", 2376) == ("127.0.0.1", 2375)
    assert split_tcp_host("tcp://[fd00::1]", 2376) == ("fd00::1", 2376)
    assert split_tcp_host("tcp://[::]:2377", 2376) == ("::", 2377)
    for bad in ("tcp://fd00::1:2376", "tcp://host:port"):
        with pytest.raises(cfg.ConfigError):
            split_tcp_host(bad, 2376)
