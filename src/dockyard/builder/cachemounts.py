"""The directories behind ``RUN --mount=type=cache``: kept by the daemon across builds, never in an image.

Each cache id (default: the mount's target) owns one directory under
``<data-root>/build/cachemounts/<sha256(id)>/data``; the id is hashed so a
hostile Dockerfile cannot name a path. ``sharing=locked`` holds an exclusive
flock on the cache for the step; ``sharing=private`` takes the cache when no
other step holds it and otherwise a fresh instance of its own (kept, as
BuildKit keeps it, and counted); ``shared`` (the default) takes it as is. The
index (created, last used, usage, the description ``docker system df -v``
shows) is one JSON file written atomically. ``docker builder prune`` removes
them (``until``/``id``/``type``/``description`` filters and ``--keep-storage``
honoured); ``docker system df`` counts them as Build Cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from typing import Iterator

from ..util.atomic import write_json_atomic

TYPE = "exec.cachemount"


@dataclass
class Record:
    key: str
    cache_id: str
    description: str
    created: float
    last_used: float
    usage: int = 0


class CacheMounts:
    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "cachemounts")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self._index = os.path.join(self.root, "index.json")
        self._lock = threading.Lock()
        self._held: set[str] = set()  # keys a step of this daemon holds now (private sharing)
        try:
            with open(self._index, encoding="utf-8") as f:
                self._records = {k: Record(**v) for k, v in json.load(f).items()}
        except (FileNotFoundError, ValueError, TypeError):
            self._records = {}

    def _save(self) -> None:
        write_json_atomic(self._index, {k: asdict(v) for k, v in self._records.items()})

    def _dir(self, key: str) -> str:
        return os.path.join(self.root, key)

    @contextlib.contextmanager
    def acquire(self, cache_id: str, sharing: str, description: str, mode: int, uid: int, gid: int,
                seed: str | None) -> Iterator[str]:
        """The cache's data directory for one step (created with ``mode``/``uid``/``gid`` and the
        ``seed`` tree copied in when new)."""
        key = hashlib.sha256(cache_id.encode()).hexdigest()
        with self._lock:
            if sharing == "private" and key in self._held:
                key = hashlib.sha256(f"{cache_id}\0{secrets.token_hex(8)}".encode()).hexdigest()
            self._held.add(key)
            now = time.time()
            rec = self._records.get(key)
            if rec is None:
                rec = self._records[key] = Record(key, cache_id, description, now, now)
            rec.last_used, rec.usage = now, rec.usage + 1
            data = os.path.join(self._dir(key), "data")
            if not os.path.isdir(data):
                os.makedirs(self._dir(key), mode=0o700, exist_ok=True)
                shutil.rmtree(data + ".new", ignore_errors=True)  # a daemon killed while making one left it
                if seed is not None:
                    shutil.copytree(seed, data + ".new", symlinks=True)
                else:
                    os.mkdir(data + ".new")
                os.chmod(data + ".new", mode)
                os.chown(data + ".new", uid, gid)
                os.rename(data + ".new", data)
            self._save()
        try:
            if sharing == "locked":
                with open(os.path.join(self._dir(key), "lock"), "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build's step waits here, as BuildKit's
                    yield data
            else:
                yield data
        finally:
            with self._lock:
                self._held.discard(key)

    def size(self, key: str) -> int:
        total = 0
        for top, dirs, files in os.walk(self._dir(key)):
            for name in files + dirs:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(top, name)).st_blocks * 512
        return total

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records.values())

    def prune(self, filters: dict[str, list[str]], until_ns: int | None, keep_storage: int) -> tuple[list[str], int]:
        """Remove the caches the filters select (all when none), least recently used first, stopping
        once what is left fits in ``keep_storage`` bytes (0: no limit)."""
        with self._lock:
            chosen = sorted((r for r in self._records.values() if r.key not in self._held and _matches(r, filters)
                             and (until_ns is None or r.last_used * 1e9 < until_ns)),
                            key=lambda r: r.last_used)
            sizes = {r.key: self.size(r.key) for r in self._records.values()}
            total = sum(sizes.values())
            deleted: list[str] = []
            reclaimed = 0
            for rec in chosen:
                if keep_storage and total <= keep_storage:
                    break
                shutil.rmtree(self._dir(rec.key), ignore_errors=True)
                del self._records[rec.key]
                deleted.append(rec.key[:25])
                reclaimed += sizes[rec.key]
                total -= sizes[rec.key]
            if deleted:
                self._save()
            return deleted, reclaimed


def _matches(rec: Record, filters: dict[str, list[str]]) -> bool:
    for name, values in filters.items():
        if not values:
            continue
        if name == "id":
            if not any(rec.key.startswith(v) for v in values):
                return False
        elif name == "type":
            if TYPE not in values:
                return False
        elif name == "description":
            if not any(v in rec.description for v in values):
                return False
    return True



_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"^(?:(\d+(?:\.\d*)?)(ns|us|ms|s|m|h))+$")


def until_ns(value: str) -> int | None:
    """A prune ``until`` filter as BuildKit reads it: a Go duration (``24h``, ``1h30m``) back from now,
    as nanoseconds since the epoch; None when it is not a duration (the caller tries a timestamp)."""
    if not _DURATION.match(value.strip()):
        return None
    total = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d*)?)(ns|us|ms|s|m|h)", value))
    return time.time_ns() - int(total)
