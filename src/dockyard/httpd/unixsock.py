"""A unix socket that queues its clients from the moment it exists.

asyncio's ``start_unix_server(path=…, start_serving=False)`` binds the path but calls ``listen`` only
when serving starts, so a client that sees the socket file in between (a test, a kubelet, systemd's
readiness check by path) is refused. Listening at once lets those clients wait in the backlog until
the daemon serves, as dockerd's sockets do.
"""

from __future__ import annotations

import socket

BACKLOG = 128


def listening(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
