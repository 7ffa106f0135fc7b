"""The container service (``engine.containers``): the façade over the lifecycle's parts.

The verbs live one group to a module (``create``, ``start``, ``stop``,
``restart``, ``remove``, ``restore``); each container's ``State`` owns its
transitions and waits; ``runtime/task.py`` is the only way to its process.
Threads, not the event loop, run lifecycle work (runc and mounts block); the
API awaits ``concurrent.futures.Future`` objects for waits and attaches, so no
worker thread is held while a client waits for an exit.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal as signals
import socket
import threading
from typing import Any, Callable

from .. import errors
from ..config import ContainerSettings
from ..runtime.runc import Runc
from ..runtime.shim import ShimManager
from ..runtime.task import ShimTask
from ..util.du import tree_size
from . import create as createmod
from . import jsonlog
from . import logs as logmod
from . import remove as removemod
from . import restore as restoremod
from . import start as startmod
from . import stop as stopmod
from . import update as updatemod
from .attachgate import AttachGate
from .lifecycle import Lifecycle
from .monitor import ExitMonitor
from .record import Container
from .state import PAUSED, RUNNING
from .restart import RestartManager
from .state import WaitResult
from .stop import parse_signal
from .table import ContainerTable

__all__ = ["ContainerService", "parse_signal"]  # parse_signal: the API's, with the verbs it parses for

log = logging.getLogger("dockyard.containers")

Publish = Callable[[str, str, str, dict[str, str]], Any]


class ContainerService:
    def __init__(self, config: ContainerSettings, images: Any, snapshotter: Any, publish: Publish,
                 networks: Any = None, volumes: Any = None) -> None:
        self.config = config
        self.volumes = volumes  # volumes.service.VolumeService; containers/mounts.py does the work
        self.networks = networks  # network.service.NetworkService: endpoints, netns, ports, DNS
        self.images = images
        self.snapshotter = snapshotter
        self._publish = publish
        self.root = os.path.join(config.data_root, "containers")
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        self.shims = ShimManager(config.exec_root)
        self._runtimes: dict[str, Runc] = {}
        self._runtimes_lock = threading.Lock()
        self.table = ContainerTable()
        self.attach_gate = AttachGate()
        self.lifecycle = Lifecycle()
        self.restarts = RestartManager(self)
        self.monitor = ExitMonitor(lambda cid: startmod.handle_exit(self, cid))
        self.log_copy = jsonlog.CopyLoop()
        self._copiers: dict[str, jsonlog.Copier] = {}
        self.closed = False

    # -- lookup ----------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/"), or unique ID prefix, as dockerd resolves them."""
        return self.table.get(ref)

    def all(self) -> list[Container]:
        return self.table.all()

    def using_image(self, image_id: str) -> list[str]:
        return [c.id for c in self.all() if c.image_id == image_id]

    def is_running(self, container_id: str) -> bool:
        c = self.table.by_id(container_id)
        return bool(c and c.state.running)

    def counts(self) -> dict[str, int]:
        cs = self.all()
        running = sum(1 for c in cs if c.state.status == RUNNING)
        paused = sum(1 for c in cs if c.state.status == PAUSED)
        return {"containers": len(cs), "running": running, "paused": paused,
                "stopped": len(cs) - running - paused}

    def held(self) -> dict[str, int]:
        """What the service keeps in memory per container (the engine's debug counts)."""
        with self.table.lock:
            copiers = len(self._copiers)
        return {"containers": len(self.table), "log_copiers": copiers, "attach": self.attach_gate.tracked(),
                "waits": sum(c.state.waiting() for c in self.all())}

    def directory(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def rootfs(self, container_id: str) -> str:
        return os.path.join(self.directory(container_id), "rootfs")

    def runtime(self, name: str) -> Runc:
        with self._runtimes_lock:
            if name not in self._runtimes:
                try:
                    path = self.config.runtime_path(name)
                except Exception as e:
                    raise errors.InvalidParameter(str(e)) from None
                self._runtimes[name] = Runc(path, os.path.join(self.config.exec_root, "runtime-" + name), name)
            return self._runtimes[name]

    def task(self, c: Container) -> ShimTask:
        return ShimTask(self.shims, self.runtime(c.runtime), c.id)

    def event(self, c: Container, action: str, extra: dict[str, str] | None = None) -> None:
        attrs = {"image": c.image_name, "name": c.name.lstrip("/")}
        attrs.update((c.config.get("Labels") or {}))
        attrs.update(extra or {})
        self._publish("container", action, c.id, attrs)

    def save(self, c: Container) -> None:
        c.save(self.directory(c.id))

    def save_quietly(self, c: Container) -> None:
        """Save on a teardown path: a full disk must not stop an exit or a failed start from being
        handled (the state in memory is right; the record catches up at the next save)."""
        try:
            self.save(c)
        except OSError as e:
            log.warning("saving the record of %s: %s", c.id, e)

    # -- the verbs (one module per group) ---------------------------------------------------
    def create(self, name: str | None, body: dict[str, Any], *, _snapshot: str | None = None,
               shareable_ipc: bool = False, namespaces: dict[str, str] | None = None,
               log_mirror: str = "") -> Container:
        return createmod.create(self, name, body, snapshot=_snapshot, shareable_ipc=shareable_ipc,
                                namespaces=namespaces, log_mirror=log_mirror)

    def adopt_exited(self, container_id: str, body: dict[str, Any], exit_code: int, started_at: str,
                     finished_at: str, journal: str | None = None) -> Container:
        return createmod.adopt_exited(self, container_id, body, exit_code, started_at, finished_at, journal)

    def start(self, ref: str) -> Container:
        return startmod.start(self, ref)

    def kill(self, ref: str, sig: int = signals.SIGKILL) -> None:
        stopmod.kill(self, ref, sig)

    def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        stopmod.stop(self, ref, timeout, sig)

    def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        self.restarts.restart(ref, timeout, sig)

    def pause(self, ref: str) -> None:
        stopmod.pause(self, ref)

    def unpause(self, ref: str) -> None:
        stopmod.unpause(self, ref)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        removemod.remove(self, ref, force, volumes)

    def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """New resource limits and restart policy (``body``: a HostConfig subset); dockerd's warnings."""
        return updatemod.update(self, self._publish, ref, body)

    def rename(self, ref: str, new_name: str) -> None:
        removemod.rename(self, ref, new_name)

    def set_links(self, c: Container, links: list[str] | None) -> None:
        removemod.set_links(self, c, links)

    def prune(self, keep: Callable[[Container], bool]) -> tuple[list[str], int]:
        return removemod.prune(self, keep)

    def restore(self) -> None:
        """Rebuild the view from the records and the shims (live restore); once, before the API serves,
        after the per-container services registered with ``lifecycle``."""
        restoremod.restore(self)

    # -- waits -------------------------------------------------------------------------
    def wait(self, ref: str, condition: str = "not-running") -> concurrent.futures.Future[WaitResult]:
        return self.get(ref).state.wait(condition)

    # -- attach, resize ------------------------------------------------------------------
    def attach_socket(self, ref: str) -> concurrent.futures.Future[socket.socket]:
        """The shim's attach socket: now if the container runs, else when it next starts. Never waits
        for the container's lifecycle lock (it is called from the event loop)."""
        c = self.get(ref)
        fut = self.attach_gate.request(c.id)
        self.event(c, "attach")
        return fut

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if not c.state.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        self.task(c).resize(height, width)
        self.event(c, "resize", {"height": str(height), "width": str(width)})

    # -- logs ----------------------------------------------------------------------------
    def log_copier(self, c: Container) -> jsonlog.Copier | None:
        """The json-file copier of a container (None with the ``none`` driver)."""
        if not c.log_path:
            return None
        with self.table.lock:
            copier = self._copiers.get(c.id)
            if copier is None:
                policy = jsonlog.validate(c.host_config.get("LogConfig") or {}) or jsonlog.Policy()
                copier = jsonlog.Copier(self.directory(c.id), c.log_path, policy, c.log_mirror)
                self._copiers[c.id] = copier
            return copier

    def forget_log_copier(self, container_id: str) -> None:
        with self.table.lock:
            self._copiers.pop(container_id, None)

    def log_reader(self, ref: str, opts: logmod.Options) -> logmod.LogReader:
        """A reader of the container's log, brought up to date with what the shim recorded."""
        c = self.get(ref)
        copier = self.log_copier(c)
        if copier is None:
            raise errors.InvalidParameter("configured logging driver does not support reading")
        copier.sync()
        return logmod.LogReader(c.log_path, jsonlog.rotated_paths(c.log_path, copier.policy.max_file, True),
                                opts, bool(c.config.get("Tty")))

    def sync_log(self, c: Container) -> None:
        copier = self.log_copier(c)
        if copier:
            copier.sync()

    def sizes(self, c: Container) -> tuple[int, int]:
        """(SizeRw, SizeRootFs) as dockerd: the bytes of the container's own layer, and those plus its image's."""
        try:
            rw = tree_size(self.snapshotter.snapshot(c.id).upperdir)
        except errors.NotFound:
            rw = 0
        try:
            image_size = self.images.store.get(c.image_id).size
        except errors.NotFound:
            image_size = 0
        return rw, rw + image_size

    def top(self, ref: str) -> list[int]:
        c = self.get(ref)
        if not c.state.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        return self.task(c).pids()

    def close(self) -> None:
        """Stop watching; the containers and their shims keep running (live restore)."""
        self.closed = True
        self.monitor.close()
        self.log_copy.close()
