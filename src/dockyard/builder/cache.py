"""The classic builder's cache: (parent image, step) → the image that step made.

A step's key hashes its parent image ID, its history line (which names the
instruction, its build args and, for COPY/ADD, the content checksum of the
sources) and the config it runs with. Entries point at ordinary images; an
entry whose image is gone is dropped on lookup. The index is one JSON file,
written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..util.atomic import write_json_atomic


@dataclass
class Entry:
    image: str
    parent: str
    description: str
    created: float
    last_used: float
    usage: int = 1


def step_key(parent: str, created_by: str, config: dict[str, Any]) -> str:
    blob = json.dumps({"parent": parent, "created_by": created_by, "config": config}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class BuildCache:
    def __init__(self, root: str, image_exists: Callable[[str], bool]) -> None:
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._path = os.path.join(root, "cache.json")
        self._exists = image_exists
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        try:
            with open(self._path, encoding="utf-8") as f:
                self._entries = {k: Entry(**v) for k, v in json.load(f).items()}
        except (FileNotFoundError, ValueError, TypeError):
            self._entries = {}

    def _save(self) -> None:
        write_json_atomic(self._path, {k: asdict(v) for k, v in self._entries.items()})

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if not self._exists(entry.image):
                del self._entries[key]
                self._save()
                return None
            # usage figures are only accounting: kept in memory, written with the next new entry
            entry.last_used = time.time()
            entry.usage += 1
            return entry.image

    def put(self, key: str, image: str, parent: str, description: str) -> None:
        now = time.time()
        with self._lock:
            self._entries[key] = Entry(image, parent, description, now, now)
            self._save()

    def entries(self) -> dict[str, Entry]:
        with self._lock:
            return {k: v for k, v in self._entries.items() if self._exists(v.image)}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._save()
