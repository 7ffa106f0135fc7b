"""The pod sandboxes' records: one JSON file each under ``<data-root>/cri/sandboxes``, written atomically.

A sandbox whose namespaces are pinned (``runtime/podns.py``) has no engine container to carry its
metadata, so the CRI keeps it here: what the kubelet asked (metadata, labels, annotations, namespace
modes, DNS), when, whether it was stopped, and where its pins are. A record is written before anything
of the pod exists and deleted after everything went, so a ``kill -9`` at any point leaves a record
the kubelet can stop and remove, never a pod nobody knows. A file that does not load is logged and
skipped, so one bad record cannot break ``ListPodSandbox``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from ..util import fields
from ..util.atomic import write_json_atomic

log = logging.getLogger("dockyard.cri")

READY, NOTREADY = "ready", "notready"
_ID = re.compile(r"[0-9a-f]{64}")
MAX_RECORD = 1 << 20  # labels and annotations are bounded by the API server; a larger file is not ours


@dataclass
class SandboxRecord:
    id: str
    name: str
    attempt: int
    labels: dict[str, str]
    annotations: dict[str, str]
    # namespace, uid, log_directory, hostname, handler, ns (the modes), cgroup_parent
    extra: dict[str, Any]
    created_ns: int
    state: str = NOTREADY
    # the container that is PID 1 of a pod sharing its PID namespace; "" for the others
    pause: str = ""
    # kind -> pin (network, ipc, uts) and "shm" -> the pod's /dev/shm
    namespaces: dict[str, str] = field(default_factory=dict)
    # the pod's DNSConfig: servers, searches, options (each a list), handed to its containers' creates
    dns: dict[str, list[str]] = field(default_factory=dict)


class SandboxStore:
    def __init__(self, directory: str, pins_root: str) -> None:
        """``pins_root``: the directory every pin of a record must be under (the store unmounts and
        deletes them: a record naming another path is not one of ours)."""
        self.directory = directory
        self.pins_root = os.path.join(pins_root, "")
        self._lock = threading.Lock()
        self._records: dict[str, SandboxRecord] = {}
        self._load()

    def _load(self) -> None:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            sandbox_id = name.removesuffix(".json")
            if not name.endswith(".json") or not _ID.fullmatch(sandbox_id):
                continue
            path = os.path.join(self.directory, name)
            try:
                if os.path.getsize(path) > MAX_RECORD:
                    raise ValueError("too large")
                with open(path, encoding="utf-8") as f:
                    record = SandboxRecord(**json.load(f))
                fields.check(record)
                if record.id != sandbox_id or record.state not in (READY, NOTREADY):
                    raise ValueError("not the record of its file name")
                if any(os.path.normpath(p) != p or not p.startswith(self.pins_root) for p in record.namespaces.values()):
                    raise ValueError(f"a pin outside {self.pins_root}")
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping the pod sandbox record %s: %s", path, e)
                continue
            self._records[record.id] = record

    def all(self) -> list[SandboxRecord]:
        with self._lock:
            return list(self._records.values())

    def get(self, sandbox_id: str) -> SandboxRecord | None:
        with self._lock:
            return self._records.get(sandbox_id)

    def save(self, record: SandboxRecord) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        write_json_atomic(os.path.join(self.directory, record.id + ".json"), asdict(record), mode=0o600)
        with self._lock:
            self._records[record.id] = record

    def delete(self, sandbox_id: str) -> None:
        with self._lock:
            self._records.pop(sandbox_id, None)
        try:
            os.unlink(os.path.join(self.directory, sandbox_id + ".json"))
        except FileNotFoundError:
            pass
