"""The userland proxy's contracts, in-process: bounded connections and flows, and ``close`` ends everything."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dockyard.network import proxy


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A TCP echo server on loopback, one thread per connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=c: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()
    srv.close()


def _echo(c: socket.socket) -> None:
    with c:
        while data := c.recv(4096):
            c.sendall(data)


def _listener() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _roundtrip(addr: tuple[str, int], msg: bytes = b"ping") -> socket.socket:
    s = socket.create_connection(addr, timeout=5)
    s.sendall(msg)
    assert s.recv(100) == msg
    return s


@pytest.mark.parametrize("bound", ["per port", "all ports"])
def test_tcp_connections_are_bounded(echo, monkeypatch, bound: str) -> None:
    if bound == "per port":
        monkeypatch.setattr(proxy, "MAX_CONNECTIONS", 2)
    else:  # the share of the daemon's descriptors that all proxies together may hold
        monkeypatch.setattr(proxy, "_SLOTS", threading.BoundedSemaphore(2))
    lsock = _listener()
    addr = lsock.getsockname()
    p = proxy.start("tcp", lsock, echo)
    try:
        held = [_roundtrip(addr), _roundtrip(addr)]
        extra = socket.create_connection(addr, timeout=5)
        assert extra.recv(100) == b""  # closed at once: the third would have been two more threads
        extra.close()
        held.pop().close()
        for _ in range(50):  # the slot frees once the proxy sees the close
            try:
                held.append(_roundtrip(addr))
                break
            except (AssertionError, OSError):
                time.sleep(0.05)
        else:
            pytest.fail("a freed slot was never reused")
    finally:
        p.close()
    for s in held:  # close() ended the live connections, and gave the port back
        s.settimeout(5)
        assert s.recv(100) == b""
        s.close()
    again = socket.socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind(addr)
    again.close()


@pytest.mark.parametrize("bound", ["per port", "all ports"])
def test_udp_flows_are_bounded_and_answered(monkeypatch, bound: str) -> None:
    if bound == "per port":
        monkeypatch.setattr(proxy, "MAX_FLOWS", 2)
    else:
        monkeypatch.setattr(proxy, "_SLOTS", threading.BoundedSemaphore(2))
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lsock.bind(("127.0.0.1", 0))
    p = proxy.start("udp", lsock, server.getsockname())
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        sources = set()
        for i, c in enumerate(clients):
            c.settimeout(5)
            c.sendto(b"q%d" % i, lsock.getsockname())
            server.settimeout(5)
            data, src = server.recvfrom(100)
            assert data == b"q%d" % i
            sources.add(src)
            server.sendto(b"a%d" % i, src)
            assert c.recv(100) == b"a%d" % i  # the answer reaches the client that asked
        assert len(sources) == 3  # one flow per client, the oldest dropped to admit the third
        clients[0].sendto(b"again", lsock.getsockname())
        data, src = server.recvfrom(100)
        assert data == b"again" and src not in sources  # its flow was made anew
    finally:
        p.close()
        for c in clients:
            c.close()
        server.close()
