"""Progress messages in dockerd's JSON-lines shape (``status``, ``id``, ``progressDetail``, ``progress``)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

ProgressFn = Callable[[dict[str, Any]], None]

# dockerd's progress reader reports at most every 100 ms and every 512 KiB
MIN_INTERVAL = 0.1
MIN_BYTES = 512 * 1024


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, four significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def bar(current: int, total: int) -> str:
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(50, int(current / total * 100) // 2)
    return f"[{'=' * pct}>{' ' * (50 - pct)}] {human_size(current):>8}/{human_size(total)}"


class Progress:
    """Thread-safe emitter; the worker threads of one pull or push share it."""

    def __init__(self, out: ProgressFn) -> None:
        self._out = out
        self._lock = threading.Lock()

    def status(self, text: str, id: str | None = None) -> None:
        msg: dict[str, Any] = {"status": text}
        if id is not None:
            msg["id"] = id
        self.emit(msg)

    def layer(self, id: str, text: str) -> None:
        self.emit({"status": text, "progressDetail": {}, "id": id})

    def bytes(self, id: str, text: str, current: int, total: int) -> None:
        detail = {"current": current, "total": total} if total > 0 else {"current": current}
        self.emit({"status": text, "progressDetail": detail, "progress": bar(current, total), "id": id})

    def aux(self, data: dict[str, Any]) -> None:
        self.emit({"progressDetail": {}, "aux": data})

    def emit(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._out(msg)

    def meter(self, id: str, text: str, total: int) -> "Meter":
        return Meter(self, id, text, total)


class Meter:
    """Counts bytes for one layer and reports them at dockerd's pace."""

    def __init__(self, progress: Progress, id: str, text: str, total: int) -> None:
        self.progress = progress
        self.id = id
        self.text = text
        self.total = total
        self.current = 0
        self._last_bytes = 0
        self._last_time = 0.0

    def add(self, n: int) -> None:
        self.current += n
        now = time.monotonic()
        if self.current - self._last_bytes >= MIN_BYTES and now - self._last_time >= MIN_INTERVAL:
            self._report(now)

    def finish(self) -> None:
        if self.current != self._last_bytes:
            self._report(time.monotonic())

    def _report(self, now: float) -> None:
        self._last_bytes = self.current
        self._last_time = now
        self.progress.bytes(self.id, self.text, self.current, self.total)
