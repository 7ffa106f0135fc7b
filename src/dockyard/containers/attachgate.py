"""Attach requests and the shims' attach sockets, met without the per-container lifecycle lock.

An attach needs only the shim's attach socket: it connects at once while a
shim is up (from the moment the shim created the container until the exit's
teardown), and otherwise waits for the next start to open the gate. Start and
teardown hold the container's lifecycle lock for as long as runc and the
mounts take (up to a minute); an attach, asked from the event loop, must not
queue behind that, so the gate has a lock of its own held only for a connect.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
from typing import Callable

from .. import errors

Connect = Callable[[], socket.socket]


class AttachGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Connect] = {}
        self._pending: dict[str, list[concurrent.futures.Future[socket.socket]]] = {}

    def request(self, container_id: str) -> concurrent.futures.Future[socket.socket]:
        """The attach socket: connected now if the shim is up, else when the container next starts."""
        fut: concurrent.futures.Future[socket.socket] = concurrent.futures.Future()
        with self._lock:
            connect = self._open.get(container_id)
            if connect is None:
                self._pending.setdefault(container_id, []).append(fut)
                return fut
            fut.set_result(connect())  # a refused connect is the caller's error, told before any stream
        return fut

    def open(self, container_id: str, connect: Connect) -> None:
        """The shim is up: answer the waiting attaches, connect later ones at once."""
        with self._lock:
            self._open[container_id] = connect
            pending = self._pending.pop(container_id, [])
            for fut in pending:
                try:
                    fut.set_result(connect())
                except Exception as e:
                    if not fut.done():
                        fut.set_exception(e)

    def close(self, container_id: str) -> None:
        """The shim is gone (exit teardown); later attaches wait for the next start."""
        with self._lock:
            self._open.pop(container_id, None)

    def fail(self, container_id: str, error: errors.DockyardError) -> None:
        """No shim will come for the waiting attaches (a failed start, a removal): they end with ``error``."""
        with self._lock:
            self._open.pop(container_id, None)
            pending = self._pending.pop(container_id, [])
        for fut in pending:
            if not fut.done():
                fut.set_exception(error)

    def tracked(self) -> int:
        """Containers the gate holds anything for (the engine's debug counts)."""
        with self._lock:
            return len(self._open.keys() | self._pending.keys())
