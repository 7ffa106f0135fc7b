"""What a client sends while its answer streams is not kept without bound (issue 12, finding 6).

`GET /events` answers with a stream that lasts as long as the client stays;
the server watches the read side to notice it leaving. Everything read there
used to be handed to the HTTP parser as the next request, so 1 GB sent on an
events connection grew the daemon by 1 GB. The bound asserted is on memory
(the daemon's VmRSS), not on time.
"""

from __future__ import annotations

import socket
import time

import pytest
from refdocker import rss_kb

GARBAGE_TOTAL = 200 * 1024 * 1024
SEND_FOR = 20.0  # seconds at most spent sending
RSS_BOUND_KIB = 50 * 1024


def _send_garbage(sock: socket.socket, total: int) -> int:
    """Send up to ``total`` bytes, for at most SEND_FOR seconds; how much went."""
    block = b"\x00garbage\r\n" * 6554  # 64 KiB and a bit
    sock.settimeout(2.0)
    sent, deadline = 0, time.monotonic() + SEND_FOR
    while sent < total and time.monotonic() < deadline:
        try:
            sent += sock.send(block)
        except (socket.timeout, BlockingIOError):
            continue  # the server stopped reading: backpressure holds us, which is allowed
        except (BrokenPipeError, ConnectionResetError):
            break  # the server dropped us: also allowed
    return sent


def _read_head(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data


@pytest.mark.parametrize("how", ["after-request", "as-declared-body"])
def test_input_during_events_stream_is_bounded(d, how):
    pid = d.proc.pid
    d.api().ping()
    before = rss_kb(pid)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(d.socket)
    try:
        if how == "after-request":
            sock.sendall(b"GET /v1.44/events HTTP/1.1\r\nHost: docker\r\n\r\n")
            assert _read_head(sock).startswith(b"HTTP/1.1 200")
        else:
            sock.sendall(b"GET /v1.44/events HTTP/1.1\r\nHost: docker\r\n"
                         b"Content-Length: %d\r\n\r\n" % GARBAGE_TOTAL)
        sent = _send_garbage(sock, GARBAGE_TOTAL)
        grown = rss_kb(pid) - before
        assert grown < RSS_BOUND_KIB, f"RSS grew by {grown} KiB after {sent} bytes sent during the stream"
    finally:
        sock.close()
    # the daemon still serves, and noticed the client go
    assert d.api().ping()
    assert rss_kb(pid) - before < RSS_BOUND_KIB
