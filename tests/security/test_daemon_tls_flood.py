"""Idle connections from one source cannot fill the TLS port (issue 12, finding 9).

1,030 connections that never start their TLS handshake used to fill the
listener's 1,024 slots, so a real client waited in the backlog until the
handshake timeout freed one. Now one source address holds at most
``tcp.MAX_PER_SOURCE`` connections: the rest are closed as soon as accepted,
and a client from elsewhere is served as usual.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import subprocess
import time

from conftest import DOCKER, make_daemon
from dockyard.daemon import tcp
from dockyard.util.tlscerts.layout import CertDir

FLOOD = 1100  # more than the listener's MAX_CONNECTIONS
ATTACKER = "127.0.0.2"  # loopback, but another source than the real client's 127.0.0.1
# Well under tcp.HANDSHAKE_TIMEOUT: what is closed by then was refused, not timed out.
REFUSAL_WAIT = tcp.HANDSHAKE_TIMEOUT / 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _closed_by_server(socks: list[socket.socket], wait: float) -> int:
    """How many of ``socks`` the server closed within ``wait`` seconds."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed: set[int] = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(closed) < len(socks):
        for fd, _ in poller.poll(100):
            try:
                data = by_fd[fd].recv(1)
            except OSError:
                data = b""
            if not data:
                closed.add(fd)
                poller.unregister(fd)
    return len(closed)


def test_idle_flood_from_one_source_is_bounded(tmp_path):
    certs = CertDir(tmp_path / "certs")
    certs.create(["localhost"], [ipaddress.ip_address("127.0.0.1")])
    port = _free_port()
    d = make_daemon(tmp_path, ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                               "--tlscacert", str(certs.file("ca.pem")),
                               "--tlscert", str(certs.file("server-cert.pem")),
                               "--tlskey", str(certs.file("server-key.pem"))])
    d.start()
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):
            s = socket.socket()
            s.bind((ATTACKER, 0))
            s.connect(("127.0.0.1", port))
            flood.append(s)
        closed = _closed_by_server(flood, REFUSAL_WAIT)
        assert closed >= FLOOD - tcp.MAX_PER_SOURCE, \
            f"only {closed} of {FLOOD} idle connections from one source were refused"
        env = {**d.env(), "DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1",
               "DOCKER_CERT_PATH": str(certs.path)}
        res = subprocess.run([DOCKER, "version", "--format", "{{.Server.APIVersion}}"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.strip(), res.stderr
        assert "Traceback" not in d.log(), d.log()
    finally:
        for s in flood:
            s.close()
        d.teardown()
