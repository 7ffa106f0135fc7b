"""A container's persistent record: config, host config, state; one JSON file written atomically."""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..apischema import validator
from ..util import fields
from ..util.atomic import write_json_atomic

RECORD = "config.v2.json"
ZERO_TIME = "0001-01-01T00:00:00Z"

# Docker's states (State.Status)
CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "removing", "exited", "dead")


def now_iso() -> str:
    return iso(datetime.datetime.now(datetime.timezone.utc).timestamp())


def iso(ts: float) -> str:
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def parse_iso(value: str) -> float:
    if not value or value.startswith("0001-"):
        return 0.0
    main, _, frac = value.rstrip("Z").partition(".")
    # fromisoformat rather than strptime: a tenth of the cost, and `ps` parses one per container
    dt = datetime.datetime.fromisoformat(main).replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


@dataclass
class State:
    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    # set by `docker stop`/`kill`, so a restart policy knows the user stopped it
    stopped_by_user: bool = False

    @property
    def running(self) -> bool:
        return self.status in (RUNNING, PAUSED, RESTARTING)


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
