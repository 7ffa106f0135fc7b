"""The end-of-life hook: services that keep something per container hear when it exits, is removed or restored.

Exec records, stats samples and health monitors are keyed by container ID and
live outside the container service; each registers here once, and the service
calls the hook at the step that makes their state stale, so nothing about a
removed container stays in memory. Callbacks run on the thread of that step
(an exit's teardown, a removal, the daemon's restore): they must be quick and
must not call back into the lifecycle of the same container.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("dockyard.containers")

Callback = Callable[[str], None]


class Lifecycle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exited: list[Callback] = []
        self._removed: list[Callback] = []
        self._restored: list[Callback] = []

    def register(self, *, exited: Callback | None = None, removed: Callback | None = None,
                 restored: Callback | None = None) -> None:
        """``exited``: the container's task ended (its exec processes with it); ``removed``: the
        container is gone; ``restored``: the daemon found it running at start (live restore)."""
        with self._lock:
            for hooks, fn in ((self._exited, exited), (self._removed, removed), (self._restored, restored)):
                if fn is not None:
                    hooks.append(fn)

    def exited(self, container_id: str) -> None:
        self._call(self._exited, "exit", container_id)

    def removed(self, container_id: str) -> None:
        self._call(self._removed, "removal", container_id)

    def restored(self, container_id: str) -> None:
        self._call(self._restored, "restore", container_id)

    def _call(self, hooks: list[Callback], what: str, container_id: str) -> None:
        with self._lock:
            todo = list(hooks)
        for fn in todo:
            try:
                fn(container_id)
            except Exception:  # one service's failure must not keep the others' state behind
                log.exception("the %s hook %r of %s failed", what, fn, container_id)
