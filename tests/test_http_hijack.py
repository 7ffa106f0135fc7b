"""The hijack mechanism attach and exec stand on, over a real unix socket.

A test-only route echoes what it reads, upper-cased, after `101 UPGRADED`;
the client half-closes its write side and must still read every byte back,
which is what `echo hi | docker run -i busybox cat` needs.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from dockyard.httpd.server import HijackResponse, HTTPServer, RawStream, Request, json_response
from dockyard.api.router import App, get, post


async def _upper_echo(request: Request) -> HijackResponse:
    async def run(stream: RawStream) -> None:
        while True:
            data = await stream.read()
            if not data:
                break
            await stream.write(data.upper())
        await stream.write(b"<eof>")
        stream.close()

    return HijackResponse(run)


async def _hello(request: Request):
    return json_response({"hello": request.q("name")})


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "h.sock")
    loop = asyncio.new_event_loop()
    app = App([post("/echo", _upper_echo), get("/hello", _hello)])
    srv = HTTPServer(app, lambda: [("Api-Version", "1.50")])
    server = loop.run_until_complete(asyncio.start_unix_server(srv.handle, path=path))
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    yield path
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


def _recv_all(s: socket.socket) -> bytes:
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def test_upgrade_then_half_close_keeps_output_flowing(server):
    s = socket.socket(socket.AF_UNIX)
    s.connect(server)
    s.settimeout(10)
    # bytes right behind the request head must reach the hijacked stream too
    s.sendall(b"POST /v1.50/echo HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
              b"Content-Length: 0\r\n\r\nhi ")
    s.sendall(b"there")
    s.shutdown(socket.SHUT_WR)
    data = _recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert b"Upgrade: tcp" in head
    assert body == b"HI THERE<eof>"


def test_keep_alive_then_hijack_on_same_connection(server):
    s = socket.socket(socket.AF_UNIX)
    s.connect(server)
    s.settimeout(10)
    s.sendall(b"GET /hello?name=a HTTP/1.1\r\nHost: docker\r\n\r\n")
    first = s.recv(65536)
    assert b'{"hello": "a"}' in first
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    s.sendall(b"x" * 200000)
    s.shutdown(socket.SHUT_WR)
    data = _recv_all(s)
    assert data.split(b"\r\n\r\n", 1)[1] == b"X" * 200000 + b"<eof>"


def test_malformed_request_gets_400(server):
    s = socket.socket(socket.AF_UNIX)
    s.connect(server)
    s.settimeout(10)
    s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    assert _recv_all(s).startswith(b"HTTP/1.1 400")
