"""Healthchecks: periodic probes run as execs in a running container, as dockerd's health monitor.

A container whose ``Config.Healthcheck`` has a ``CMD``/``CMD-SHELL`` test gets a
monitor thread while it runs. The monitor follows the engine's event feed
(``start`` begins it, ``die`` ends it) and the containers' lifecycle hook
(``removed`` forgets it; ``restored`` picks up a container that kept running
while the daemon was down). ``State.Health`` is kept in ``health.json`` beside
the container's record, so it survives the daemon.

Semantics are dockerd's (daemon/health.go): first probe one interval after the
start (``StartInterval`` while starting inside the start period), the timer
re-armed after each probe ends; a failure inside the start period does not
count while the status is still ``starting``; ``Retries`` consecutive failures
make it ``unhealthy``; a ``health_status: <status>`` event on every change; the
last five results kept; status ``unhealthy`` (without an event) once the
container stops.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..util import timefmt
from .. import errors

log = logging.getLogger("dockyard.health")

Publish = Callable[[str, str, str, dict[str, str]], Any]
STATE_FILE = "health.json"
SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096
STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, NONE)


def merge_config(user: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's healthcheck: the user's fields over the image's, field by field (dockerd's merge)."""
    if not user:
        return image or None
    if not image:
        return user
    merged = dict(user)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def probe_command(config: dict[str, Any]) -> list[str] | None:
    """The probe's argv, or None when the container has no probe (no test, ``NONE``)."""
    hc = config.get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test:
        return None
    if test[0] == "CMD" and len(test) > 1:
        return list(test[1:])
    if test[0] == "CMD-SHELL" and len(test) > 1:
        shell = config.get("Shell") or ["/bin/sh", "-c"]
        return [*shell, " ".join(test[1:])]
    return None  # NONE, or a kind dockerd ignores too


@dataclass
class Result:
    Start: str
    End: str
    ExitCode: int
    Output: str


@dataclass
class Health:
    Status: str = STARTING
    FailingStreak: int = 0
    Log: list[Result] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Monitor:
    stop: threading.Event
    thread: threading.Thread


class HealthMonitor:
    """``engine.health``: runs the probes and answers for ``State.Health``."""

    def __init__(self, containers: Any, execs: Any, publish: Publish) -> None:
        self.containers = containers
        self.execs = execs
        self._publish = publish
        self._lock = threading.Lock()
        self._health: dict[str, Health] = {}
        self._monitors: dict[str, _Monitor] = {}
        self._closed = False
        containers.lifecycle.register(removed=self._forget, restored=lambda cid: self._begin(cid, reset=False))

    # -- what inspect and ps read ---------------------------------------------------------
    def get(self, container_id: str) -> Health | None:
        """The container's health, None if it never ran a probe config (dockerd: ``State.Health`` absent)."""
        with self._lock:
            if container_id in self._health:
                return self._health[container_id]
        h = self._load(container_id)
        if h is not None:
            with self._lock:
                h = self._health.setdefault(container_id, h)
        return h

    def status(self, container_id: str) -> str:
        h = self.get(container_id)
        return h.Status if h else NONE

    def status_suffix(self, container_id: str) -> str:
        """What ``docker ps`` appends to ``Up …`` of a running container."""
        h = self.get(container_id)
        if h is None:
            return ""
        return " (health: starting)" if h.Status == STARTING else f" ({h.Status})"

    # -- event feed ---------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        """Subscriber of the engine's event bus; runs on the publisher's thread, so it only hands off."""
        if event.type != "container":
            return
        if event.action == "start":
            self._begin(event.actor_id, reset=True)
        elif event.action == "die":
            self._end(event.actor_id, stopped=True)

    def _forget(self, container_id: str) -> None:
        """The container is removed (the lifecycle's ``removed`` hook)."""
        self._end(container_id, stopped=False)
        with self._lock:
            self._health.pop(container_id, None)

    def count(self) -> int:
        """Containers the monitor holds a health or a probe for (the engine's debug counts)."""
        with self._lock:
            return len(self._health.keys() | self._monitors.keys())

    def close(self) -> None:
        self._closed = True
        with self._lock:
            monitors = list(self._monitors.values())
            self._monitors.clear()
        for m in monitors:
            m.stop.set()
        for m in monitors:
            m.thread.join(2)

    # -- monitors -----------------------------------------------------------------------
    def _begin(self, container_id: str, reset: bool) -> None:
        if self._closed:
            return
        try:
            c = self.containers.get(container_id)
        except errors.NotFound:
            return
        cmd = probe_command(c.config)
        if cmd is None:
            return
        h = self.get(container_id) or Health()
        with self._lock:
            old = self._monitors.pop(container_id, None)
            if not reset and old is not None:
                self._monitors[container_id] = old  # already watched (a start raced the resume)
                return
            if reset or container_id not in self._health:
                h.Status, h.FailingStreak = STARTING, 0
            self._health[container_id] = h
            stop = threading.Event()
            thread = threading.Thread(target=self._run, args=(container_id, cmd, stop), daemon=True,
                                      name=f"health-{container_id[:12]}")
            self._monitors[container_id] = _Monitor(stop, thread)
        if old is not None:
            old.stop.set()
        self._save(container_id, h)
        thread.start()

    def _end(self, container_id: str, stopped: bool) -> None:
        with self._lock:
            m = self._monitors.pop(container_id, None)
            h = self._health.get(container_id)
        if m is None:
            return
        m.stop.set()
        if stopped and h is not None:
            h.Status = UNHEALTHY  # as dockerd once the monitor stops, without an event
            self._save(container_id, h)

    def _run(self, container_id: str, cmd: list[str], stop: threading.Event) -> None:
        while not stop.wait(self._interval(container_id)):
            try:
                c = self.containers.get(container_id)
            except errors.NotFound:
                return
            hc = c.config.get("Healthcheck") or {}
            timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT) / SECOND
            start = time.time()
            try:
                code, output = self.execs.run(container_id, cmd, timeout, MAX_OUTPUT)
            except errors.DockyardError as e:
                code, output = -1, str(e)
            except Exception as e:  # a probe must never end the monitor
                log.warning("health probe of %s failed: %s", container_id, e)
                code, output = -1, str(e)
            if stop.is_set():
                return  # the container stopped meanwhile: this result means nothing
            self._record(c, Result(timefmt.fixed_from_seconds(start), timefmt.fixed_from_seconds(time.time()), code, output), start)

    def _interval(self, container_id: str) -> float:
        try:
            c = self.containers.get(container_id)
        except errors.NotFound:
            return 0.0
        hc = c.config.get("Healthcheck") or {}
        interval = hc.get("Interval") or DEFAULT_INTERVAL
        start_period = hc.get("StartPeriod") or 0
        h = self.get(container_id)
        since_start = (time.time() - timefmt.parse_seconds(c.state.started_at)) * SECOND
        if since_start < start_period and h is not None and h.Status == STARTING:
            interval = hc.get("StartInterval") or DEFAULT_START_INTERVAL
        return interval / SECOND

    def _record(self, c: Any, result: Result, started: float) -> None:
        hc = c.config.get("Healthcheck") or {}
        retries = hc.get("Retries") or DEFAULT_RETRIES
        h = self.get(c.id)
        if h is None:
            return
        with self._lock:
            old = h.Status
            h.Log = [*h.Log, result][-MAX_LOG:]
            if result.ExitCode == 0:
                h.FailingStreak = 0
                h.Status = HEALTHY
            else:
                in_start_period = (started - timefmt.parse_seconds(c.state.started_at)) * SECOND < (hc.get("StartPeriod") or 0)
                if not (h.Status == STARTING and in_start_period):
                    h.FailingStreak += 1
                    if h.FailingStreak >= retries:
                        h.Status = UNHEALTHY
            new = h.Status
        self._save(c.id, h)
        if new != old:
            attrs = {"image": c.image_name, "name": c.name.lstrip("/"), **(c.config.get("Labels") or {})}
            self._publish("container", f"health_status: {new}", c.id, attrs)

    # -- persistence --------------------------------------------------------------------
    def _path(self, container_id: str) -> str:
        return os.path.join(self.containers.directory(container_id), STATE_FILE)

    def _load(self, container_id: str) -> Health | None:
        try:
            with open(self._path(container_id), encoding="utf-8") as f:
                data = json.load(f)
            return Health(data["Status"], int(data["FailingStreak"]), [Result(**r) for r in data["Log"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, container_id: str, h: Health) -> None:
        path = self._path(container_id)
        with self._lock:
            text = json.dumps(h.to_json())
        tmp = f"{path}.{threading.get_ident()}.tmp"  # a stop may save while the probe thread does
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except FileNotFoundError:
            pass  # the container was removed meanwhile
