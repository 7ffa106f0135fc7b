"""A client that connects while the daemon is still starting waits and is served, never refused.

The sockets exist (and stop a second daemon) before the engine is up; a client that sees the file in
that window (a kubelet, a script polling for the path) must queue in the backlog, as with dockerd."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from conftest import make_daemon


def test_clients_wait_in_the_backlog_while_the_daemon_starts(tmp_path: Path) -> None:
    d = make_daemon(tmp_path)
    paths = {"docker": d.socket, "cri": os.path.join(d.exec_root, "cri.sock")}
    starting = threading.Thread(target=d.start)
    starting.start()
    try:
        early: dict[str, socket.socket] = {}
        deadline = time.monotonic() + 20
        while len(early) < len(paths) and time.monotonic() < deadline:
            for name, path in paths.items():
                if name not in early and os.path.exists(path):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(path)  # ECONNREFUSED if the socket is bound but not listening
                    early[name] = s
            time.sleep(0.001)
        assert set(early) == set(paths)
        with early["docker"] as s:
            s.settimeout(30)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            assert reply.startswith(b"HTTP/1.") and reply.endswith(b"OK")
        early["cri"].close()
    finally:
        starting.join()
        d.teardown()
