"""The request-body path uploads (docker cp, load, build) stand on, over a real unix socket.

A test-only route hands the body to a worker thread through ``BodyReader``,
as the upload routes do, and reports what the worker saw: the bytes' digest,
or the error it raised. Bodies come with Content-Length or chunked, the
connection must stay usable after one, a body cut short must reach the
worker as an error (never as a short body taken for whole), and a worker
that does not read must stop the server reading the socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
from typing import Any

import pytest

from dockyard.httpd.server import HTTPServer, Request, Response, json_response
from dockyard.api.images import BodyReader, _consume
from dockyard.api.router import App, put

READ_SIZES = (1, 511, 4096, 1 << 20, 100_000)  # the worker's reads cycle through these


class Worker:
    """What the upload route's worker thread saw, and a gate that holds it before its first read."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.outcome: list[Any] = []
        self.done = threading.Event()

    def run(self, reader: BodyReader) -> dict[str, Any]:
        self.gate.wait(30)
        digest, size, i = hashlib.sha256(), 0, 0
        try:
            while True:
                want = READ_SIZES[i % len(READ_SIZES)]
                data = reader.read(want)
                assert isinstance(data, bytes)
                # reads are exact until the end: a short read is only ever the last one
                if len(data) < want:
                    assert reader.read(1) == b""
                digest.update(data)
                size += len(data)
                i += 1
                if len(data) < want:
                    break
        except BaseException as e:
            self.outcome.append(e)
            raise
        finally:
            self.done.set()
        result = {"size": size, "sha256": digest.hexdigest()}
        self.outcome.append(result)
        return result


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "b.sock")
    worker = Worker()
    loop = asyncio.new_event_loop()

    async def upload(request: Request) -> Response:
        reader = BodyReader(request, asyncio.get_running_loop())
        return json_response(await _consume(request, reader, lambda: worker.run(reader)))

    async def ignore(request: Request) -> Response:
        return json_response({"read": False})

    srv = HTTPServer(App([put("/upload", upload), put("/ignore", ignore)]), lambda: [])
    # the daemon's own stream limit (daemon/main.py)
    listener = loop.run_until_complete(asyncio.start_unix_server(srv.handle, path=path, limit=2**20))
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    yield path, worker
    worker.gate.set()
    asyncio.run_coroutine_threadsafe(srv.close_connections(1.0), loop).result(10)
    loop.call_soon_threadsafe(listener.close)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(30)
    return s


def _response(s: socket.socket) -> tuple[bytes, dict[str, Any]]:
    """One Content-Length response off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += s.recv(65536)
    return head, json.loads(body[:length])


def _chunked(payload: bytes, size: int) -> bytes:
    out = bytearray()
    for i in range(0, len(payload), size):
        piece = payload[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return bytes(out) + b"0\r\n\r\n"


def _expect(payload: bytes) -> dict[str, Any]:
    return {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


def test_content_length_bodies_keep_the_connection(server):
    path, worker = server
    s = _connect(path)
    for payload in (os.urandom(5_000_000), b"", os.urandom(1)):
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        head, body = _response(s)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert body == _expect(payload)
    s.close()


def test_chunked_bodies_keep_the_connection(server):
    path, worker = server
    s = _connect(path)
    # Go's 32 KiB chunks (the docker CLI's cp and build), then odd sizes
    for payload, size in ((os.urandom(3_000_000), 32768), (os.urandom(70_001), 7), (b"", 1)):
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + _chunked(payload, size))
        head, body = _response(s)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert body == _expect(payload)
    s.close()


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_client_gone_mid_body_is_an_error_to_the_worker(server, framing):
    path, worker = server
    s = _connect(path)
    payload = os.urandom(2_000_000)
    if framing == "length":
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % (len(payload) + 1) + payload)
    else:  # cut at a chunk boundary: the framing is well formed up to the end
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + _chunked(payload, 32768)[:-len(b"0\r\n\r\n")])
    s.shutdown(socket.SHUT_WR)
    assert worker.done.wait(30)
    assert len(worker.outcome) == 1
    assert isinstance(worker.outcome[0], Exception)
    assert "unexpected EOF in request body" in str(worker.outcome[0])
    s.close()


def test_broken_chunked_framing_is_an_error_to_the_worker(server):
    path, worker = server
    s = _connect(path)
    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"10\r\n" + b"a" * 16 + b"\r\nnot-hex\r\n")
    assert worker.done.wait(30)
    assert isinstance(worker.outcome[0], Exception)
    assert "invalid request body" in str(worker.outcome[0])
    s.close()


def test_a_worker_that_does_not_read_stops_the_socket_being_read(server):
    path, worker = server
    worker.gate.clear()
    s = _connect(path)
    payload = os.urandom(64 << 20)
    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % len(payload))
    s.setblocking(False)
    view, sent, stalled = memoryview(payload), 0, 0
    while sent < len(payload) and stalled < 50:
        try:
            sent += s.send(view[sent:sent + (1 << 20)])
            stalled = 0
        except BlockingIOError:
            stalled += 1
            threading.Event().wait(0.02)  # give the server's loop time to read, if it would
    # read-ahead bound (16 MiB) + stream and h11 buffers + the socket's own buffers
    assert sent < 24 << 20, sent
    worker.gate.set()
    s.setblocking(True)
    s.settimeout(30)
    s.sendall(view[sent:])
    head, body = _response(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body == _expect(payload)
    s.close()


def test_expect_100_continue_is_answered_before_the_body(server):
    path, worker = server
    s = _connect(path)
    payload = os.urandom(100_000)
    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: d\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
              % len(payload))
    assert s.recv(65536).startswith(b"HTTP/1.1 100 ")
    s.sendall(payload)
    head, body = _response(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body == _expect(payload)
    s.close()


def test_unread_body_cut_short_closes_quietly(server, caplog):
    path, worker = server
    s = _connect(path)
    s.sendall(b"PUT /ignore HTTP/1.1\r\nHost: d\r\nContent-Length: 100\r\n\r\nonly this")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    s.close()
    # the server reads the rest away after answering; the cut is no error of its own
    s = _connect(path)
    s.sendall(b"PUT /ignore HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n")
    head, body = _response(s)
    assert body == {"read": False}
    s.close()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
