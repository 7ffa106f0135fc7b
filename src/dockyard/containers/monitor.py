"""Watches the shims of running containers and reports when one exits.

One thread and one epoll set for all containers: a pidfd per shim becomes
readable when the shim is gone (conmon writes the exit file before it exits).
"""

from __future__ import annotations

import logging
import os
import select
import threading
from typing import Callable

log = logging.getLogger("dockyard.containers")


class ExitMonitor:
    def __init__(self, on_exit: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._lock = threading.Lock()
        self._by_fd: dict[int, str] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="exit-monitor", daemon=True)
        self._thread.start()

    def watch(self, container_id: str, pidfd: int) -> None:
        """Take ownership of ``pidfd``; ``on_exit(container_id)`` runs (on its own thread) when it fires."""
        with self._lock:
            self._by_fd[pidfd] = container_id
            self._epoll.register(pidfd, select.EPOLLIN)

    def _run(self) -> None:
        while True:
            try:
                events = self._epoll.poll()
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return
            for fd, _ in events:
                if fd == self._wake_r:
                    return
                with self._lock:
                    container_id = self._by_fd.pop(fd, None)
                    try:
                        self._epoll.unregister(fd)
                    except OSError:
                        pass
                os.close(fd)
                if container_id:
                    # exits are handled in parallel: each runs runc delete and unmounts
                    threading.Thread(target=self._report, args=(container_id,), daemon=True).start()

    def _report(self, container_id: str) -> None:
        try:
            self._on_exit(container_id)
        except Exception:
            log.exception("handling the exit of %s failed", container_id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        with self._lock:
            for fd in self._by_fd:
                os.close(fd)
            self._by_fd.clear()
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
