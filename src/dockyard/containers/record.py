"""A container's persistent record: config, host config, state; one JSON file written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..apischema import validator
from ..util import fields
from ..util.atomic import write_json_atomic
from .state import State

RECORD = "config.v2.json"


@dataclass
class Container:
    id: str
    name: str  # with the leading "/"
    created: str
    image_id: str
    image_name: str  # as the user gave it (Config.Image)
    config: dict[str, Any]
    host_config: dict[str, Any]
    path: str
    args: list[str]
    state: State = field(default_factory=State)
    runtime: str = "runc"
    log_path: str = ""
    hostname_path: str = ""
    hosts_path: str = ""
    resolv_conf_path: str = ""
    mounts: list[dict[str, Any]] = field(default_factory=list)  # containers/mounts.py MountPoint fields
    # namespaces held outside the engine that the container joins by path (a CRI pod's, pinned by
    # runtime/podns.py): kind ("network", "ipc", "uts") -> pin, "shm" -> the tmpfs bound at /dev/shm.
    # Only the engine's callers set it, never an API body.
    namespaces: dict[str, str] = field(default_factory=dict)
    # a second copy of the log in the CRI's format (jsonlog.Copier's mirror: the kubelet's log_path)
    log_mirror: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def save(self, directory: str) -> None:
        data = asdict(self)
        write_json_atomic(os.path.join(directory, RECORD), data)

    @classmethod
    def load(cls, directory: str) -> "Container":
        with open(os.path.join(directory, RECORD), encoding="utf-8") as f:
            data = json.load(f)
        data["state"] = State(**data.get("state", {}))
        c = cls(**data)
        # a record that would break `docker ps` or `docker inspect` for every client is refused
        # (ValueError/TypeError: the restore skips and logs it), whatever wrote it: its types and
        # the API schema's, what create would have accepted
        fields.check(c)
        wrong = validator.problem("POST /containers/create", {**c.config, "HostConfig": c.host_config})
        if wrong:
            raise ValueError(f"container {c.id}: {wrong}")
        return c
