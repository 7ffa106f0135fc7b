"""Which registry blobs hold a layer (dockerd's v2 metadata): diff ID → compressed digests and their repositories.

Filled by pulls (the blob a layer came from) and pushes (the blob a layer was
compressed to), it lets a push skip compression and upload when the target
repository already has the blob, or mount it from a sibling repository on the
same registry.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass

from ..util.atomic import write_json_atomic

MAX_ENTRIES_PER_LAYER = 16


@dataclass(frozen=True)
class BlobSource:
    digest: str
    size: int
    media_type: str
    repository: str  # fully qualified, e.g. 127.0.0.1:5000/busybox


class BlobIndex:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._by_diff: dict[str, list[BlobSource]] = {}
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
            self._by_diff = {d: [BlobSource(**e) for e in entries] for d, entries in raw.items()}
        except (OSError, ValueError, TypeError):
            pass  # a lost index only costs a re-upload

    def sources(self, diff_id: str) -> list[BlobSource]:
        with self._lock:
            return list(self._by_diff.get(diff_id, []))

    def add(self, diff_id: str, source: BlobSource) -> None:
        with self._lock:
            entries = [e for e in self._by_diff.get(diff_id, []) if e != source]
            entries.insert(0, source)
            self._by_diff[diff_id] = entries[:MAX_ENTRIES_PER_LAYER]
            snapshot = {d: [asdict(e) for e in es] for d, es in self._by_diff.items()}
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_json_atomic(self.path, snapshot)
