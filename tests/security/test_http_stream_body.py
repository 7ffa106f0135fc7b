"""A streamed answer that starts while its handler still reads the body (issue 12, findings 6 and 20).

Build and pull answer with a progress stream from a worker thread; a worker
may emit its first message before it has read the whole request body. The
server's read-side watcher for the stream must then leave the body to the
handler's read-ahead (taking any of it would corrupt what the worker gets),
and take over the socket only once the body is done. In process, over a
real unix socket, with the daemon's own pieces: HTTPServer, BodyReader and
workstream.progress_stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
from typing import Any

import pytest

from dockyard.httpd.server import HTTPServer, Request, json_response
from dockyard.api.images import BodyReader
from dockyard.api.router import App, get, post
from dockyard.api.workstream import progress_stream

PIECES, PIECE = 20, 64 * 1024
FLOOD = 20_000  # progress messages of 1 KiB the flood worker tries to emit


class Flood:
    """A worker that emits as fast as it can, counting what emit took from it."""

    def __init__(self) -> None:
        self.emitted = 0
        self.cancelled = threading.Event()
        self.done = threading.Event()

    def work(self, emit: Any, cancel: threading.Event) -> None:
        try:
            for i in range(FLOOD):
                if cancel.is_set():
                    self.cancelled.set()
                    return
                emit({"status": "x" * 1000, "n": i})
                self.emitted += 1
        finally:
            self.done.set()


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "s.sock")
    loop = asyncio.new_event_loop()

    async def upload(request: Request):
        reader = BodyReader(request, asyncio.get_running_loop())

        def work(emit: Any, cancel: threading.Event) -> None:
            emit({"status": "started"})  # before a byte of the body is read
            digest, size = hashlib.sha256(), 0
            while data := reader.read(4096):
                digest.update(data)
                size += len(data)
            emit({"size": size, "sha256": digest.hexdigest()})

        return await progress_stream(work, lambda m: (json.dumps(m) + "\n").encode(),
                                     lambda e: (json.dumps({"error": str(e)}) + "\n").encode(), close=reader.aclose)

    async def hello(request: Request):
        return json_response({"hello": True})

    flood = Flood()

    async def flooding(request: Request):
        return await progress_stream(flood.work, lambda m: (json.dumps(m) + "\n").encode(),
                                     lambda e: (json.dumps({"error": str(e)}) + "\n").encode())

    srv = HTTPServer(App([post("/upload", upload), get("/hello", hello), get("/flood", flooding)]), lambda: [])
    listener = loop.run_until_complete(asyncio.start_unix_server(srv.handle, path=path, limit=2**20))
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    yield path, flood
    asyncio.run_coroutine_threadsafe(srv.close_connections(1.0), loop).result(10)
    loop.call_soon_threadsafe(listener.close)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


def _read_until(s: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    while marker not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_stream_started_before_the_body_ends_gets_the_whole_body(server):
    payload = os.urandom(PIECES * PIECE)
    s = socket.socket(socket.AF_UNIX)
    s.connect(server[0])
    s.settimeout(30)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: d\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: %d\r\n\r\n" % len(payload))
    got = _read_until(s, b'"started"')  # the stream is under way, the body not sent yet
    for i in range(PIECES):
        s.sendall(payload[i * PIECE:(i + 1) * PIECE])
        time.sleep(0.01)
    got = _read_until(s, b"\r\n0\r\n\r\n", got)
    expected = {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    assert json.dumps(expected).encode() in got, got[-300:]
    # and the connection carries the next request
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: d\r\n\r\n")
    assert b'{"hello": true}' in _read_until(s, b"}")
    s.close()


def test_a_client_that_does_not_read_holds_the_work_back(server):
    path, flood = server
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(30)
    s.sendall(b"GET /flood HTTP/1.1\r\nHost: d\r\n\r\n")
    _read_until(s, b"\r\n\r\n")
    time.sleep(1.0)  # the client reads nothing more meanwhile
    # what waits is bounded by the stream's queue and the socket's buffers, not by what the work makes
    assert flood.emitted < FLOOD // 2, flood.emitted
    s.close()
    assert flood.done.wait(10) and flood.cancelled.is_set()


def test_a_stream_never_iterated_still_cancels_its_work(server):
    path, flood = server
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(30)
    s.sendall(b"HEAD /flood HTTP/1.1\r\nHost: d\r\n\r\n")
    assert _read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert flood.done.wait(10) and flood.cancelled.is_set()
    s.close()
