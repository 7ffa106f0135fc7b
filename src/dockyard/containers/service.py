"""The container service (``engine.containers``): records, state machine, names, lifecycle.

Threads, not the event loop, run lifecycle work (runc and mounts block); the
API awaits ``concurrent.futures.Future`` objects for waits and attaches, so no
worker thread is held while a client waits for an exit.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import secrets
import shutil
import signal as signals
import socket
import threading
import time
from typing import Any, Callable

from .. import errors
from ..config import ContainerSettings
from ..runtime import spec as specmod
from ..runtime.runc import Runc
from ..runtime.shim import Exit, ShimManager, StartError
from . import defaults as defaultsmod
from . import health as healthmod
from . import jsonlog
from . import links as linksmod
from . import logs as logmod
from . import mounts as mountsmod
from . import names as namegen
from .monitor import ExitMonitor
from .record import (CREATED, DEAD, EXITED, PAUSED, REMOVING, RESTARTING, RUNNING, Container, State, iso,
                     now_iso, parse_iso)
from ..util.atomic import write_atomic
from ..util.du import tree_size

log = logging.getLogger("dockyard.containers")

Publish = Callable[[str, str, str, dict[str, str]], Any]
DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 10.0  # dockerd's daemon.Kill waits this long before killing the pid itself
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    """``KILL``, ``SIGKILL`` or ``9``; unknown names are a 400 as in dockerd."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if num <= 0 or num >= 65:
            raise errors.InvalidParameter(f"Invalid signal: {value}")
        return num
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signals.Signals, name, None) if name in signals.Signals.__members__ else None
    if sig is None:
        raise errors.InvalidParameter(f"Invalid signal: {value}")
    return int(sig)


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
        self._lock = threading.RLock()
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._op_locks: dict[str, threading.RLock] = {}
        self._exited: dict[str, threading.Condition] = {}
        self._waiters: dict[str, list[tuple[str, concurrent.futures.Future[dict[str, Any]]]]] = {}
        self._pending_attach: dict[str, list[concurrent.futures.Future[socket.socket]]] = {}
        self._monitor = ExitMonitor(self._handle_exit)
        self._log_copy = jsonlog.CopyLoop()
        self._copiers: dict[str, jsonlog.Copier] = {}
        self._closed = False
        self._restore()

    # -- lookup ----------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/"), or unique ID prefix, as dockerd resolves them."""
        with self._lock:
            if ref in self._containers:
                return self._containers[ref]
            by_name = self._names.get(ref if ref.startswith("/") else "/" + ref)
            if by_name:
                return self._containers[by_name]
            if "/" in ref.strip("/"):  # a legacy link's name, "/parent/alias", stands for its child
                child = linksmod.child_by_link_name(list(self._containers.values()), ref, self.get)
                if child is not None:
                    return child
            if ref:
                matches = [c for cid, c in self._containers.items() if cid.startswith(ref)]
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    raise errors.InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        with self._lock:
            return list(self._containers.values())

    def using_image(self, image_id: str) -> list[str]:
        return [c.id for c in self.all() if c.image_id == image_id]

    def is_running(self, container_id: str) -> bool:
        c = self._containers.get(container_id)
        return bool(c and c.state.running)

    def counts(self) -> dict[str, int]:
        cs = self.all()
        running = sum(1 for c in cs if c.state.status == RUNNING)
        paused = sum(1 for c in cs if c.state.status == PAUSED)
        return {"containers": len(cs), "running": running, "paused": paused,
                "stopped": len(cs) - running - paused}

    def directory(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def rootfs(self, container_id: str) -> str:
        return os.path.join(self.directory(container_id), "rootfs")

    def runtime(self, name: str) -> Runc:
        with self._lock:
            if name not in self._runtimes:
                try:
                    path = self.config.runtime_path(name)
                except Exception as e:
                    raise errors.InvalidParameter(str(e)) from None
                self._runtimes[name] = Runc(path, os.path.join(self.config.exec_root, "runtime-" + name), name)
            return self._runtimes[name]

    def _op_lock(self, container_id: str) -> threading.RLock:
        with self._lock:
            return self._op_locks.setdefault(container_id, threading.RLock())

    def _event(self, c: Container, action: str, extra: dict[str, str] | None = None) -> None:
        attrs = {"image": c.image_name, "name": c.name.lstrip("/")}
        attrs.update((c.config.get("Labels") or {}))
        attrs.update(extra or {})
        self._publish("container", action, c.id, attrs)

    def _save(self, c: Container) -> None:
        c.save(self.directory(c.id))

    def _save_quietly(self, c: Container) -> None:
        """Save on a teardown path: a full disk must not stop an exit or a failed start from being
        handled (the state in memory is right; the record catches up at the next save)."""
        try:
            self._save(c)
        except OSError as e:
            log.warning("saving the record of %s: %s", c.id, e)

    # -- create ----------------------------------------------------------------
    def create(self, name: str | None, body: dict[str, Any], *, _snapshot: str | None = None,
               shareable_ipc: bool = False) -> Container:
        """``shareable_ipc``: the default IPC mode of clients older than API 1.40."""
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        host_config = dict(body.get("HostConfig") or {})
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise errors.legacy(errors.InvalidParameter("config cannot be empty in order to create a container"),
                                "Config cannot be empty in order to create a container")
        image = self.images.resolve(image_ref)
        image_config = (image.config.get("config") or {})
        specmod.validate_host_config(host_config)
        defaultsmod.apply(host_config, shareable_ipc)
        validate_restart_policy(host_config)
        if config.get("StopSignal"):
            parse_signal(config["StopSignal"])  # a 400 now rather than at stop time, as dockerd
        host_config["LogConfig"] = _merge_log_config(host_config.get("LogConfig") or {}, self.config)
        log_policy = jsonlog.validate(host_config["LogConfig"])
        if host_config.get("AutoRemove") and (host_config.get("RestartPolicy") or {}).get("Name") not in (None, "", "no"):
            raise errors.InvalidParameter("can't create 'AutoRemove' container with restart policy")
        network_mode = host_config.get("NetworkMode") or "default"
        if network_mode not in ("default", "bridge", "none", "host") and not network_mode.startswith("container:"):
            network_mode = self.networks.get(network_mode).name  # 404 "network X not found"
        runtime_name = host_config.get("Runtime") or self.config.default_runtime
        self.runtime(runtime_name)
        args = specmod.command(config, image_config)
        mount_plan = mountsmod.plan(host_config, config, image_config, self.get, self.volumes.validate_create)
        # dockerd stores the merged config: what inspect shows
        for key in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
                    "StopSignal", "Healthcheck", "OnBuild", "Shell"):
            if key == "Env":
                config["Env"] = _merge_env(image_config.get("Env") or [], config.get("Env") or [])
            elif key == "Labels":
                config["Labels"] = {**(image_config.get("Labels") or {}), **(config.get("Labels") or {})}
            elif key == "Cmd":
                if not config.get("Cmd") and not config.get("Entrypoint"):
                    config["Cmd"] = image_config.get("Cmd")
            elif key == "Entrypoint":
                if config.get("Entrypoint") is None:
                    config["Entrypoint"] = image_config.get("Entrypoint")
                elif config["Entrypoint"] == [""]:
                    config["Entrypoint"] = None
            elif key == "Healthcheck" and (config.get(key) or image_config.get(key)):
                config[key] = healthmod.merge_config(config.get(key), image_config.get(key))
            elif not config.get(key) and image_config.get(key):
                config[key] = image_config[key]
        container_id = _snapshot or secrets.token_hex(32)
        config.setdefault("Hostname", "")
        if not config["Hostname"] and network_mode != "host":
            config["Hostname"] = container_id[:12]
        config["Image"] = image_ref
        host_config.setdefault("NetworkMode", "bridge" if network_mode == "default" else network_mode)
        host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
        host_config["Runtime"] = runtime_name
        with self._lock:
            if name:
                full = namegen.normalize(name)
                if full in self._names:
                    raise errors.Conflict(
                        f'Conflict. The container name "{full}" is already in use by container '
                        f'"{self._names[full]}". You have to remove (or rename) that container to be able '
                        f'to reuse that name.')
            else:
                full = namegen.generate(set(self._names))
            self._names[full] = container_id  # reserved while the rest is prepared
        directory = self.directory(container_id)
        try:
            host_config["Links"] = linksmod.normalize(host_config.get("Links"), full, self.get, network_mode)
            os.makedirs(os.path.join(directory, "rootfs"), mode=0o710)
            if _snapshot is None:
                self.snapshotter.prepare(container_id, image.top_layer)
            c = Container(id=container_id, name=full, created=now_iso(), image_id=image.id, image_name=image_ref,
                          config=config, host_config=host_config, path=args[0], args=args[1:],
                          runtime=runtime_name)
            c.mounts = mountsmod.materialize(mount_plan, self.volumes)
            self._write_network_files(c)
            self.networks.register(c.id, c.name, host_config, body.get("NetworkingConfig"), config)
            if log_policy is not None:
                c.log_path = os.path.join(directory, f"{container_id}-json.log")
            self._save(c)
        except BaseException:
            with self._lock:
                self._names.pop(full, None)
            try:
                self.snapshotter.remove(container_id)
            except Exception:
                pass
            shutil.rmtree(directory, ignore_errors=True)
            self.networks.unregister(container_id)
            mountsmod.discard(mount_plan, self.volumes)
            raise
        with self._lock:
            self._containers[container_id] = c
        self._event(c, "create")
        return c

    def adopt_exited(self, container_id: str, body: dict[str, Any], exit_code: int, started_at: str,
                     finished_at: str, journal: str | None = None) -> Container:
        """Record a process that ran outside the service on the prepared snapshot ``container_id``
        (a classic build's RUN step, which dockerd keeps as an exited container when it fails or
        with ``--rm=false``), so that ps, inspect, diff, cp, commit, start and rm work on it.
        ``journal``, the process's output in the shim's journal format, becomes its log."""
        c = self.create(None, body, _snapshot=container_id)
        if journal is not None and c.log_path:
            os.replace(journal, os.path.join(self.directory(c.id), jsonlog.JOURNAL))
        with self._op_lock(c.id):
            c.state.status = EXITED
            c.state.exit_code = exit_code
            c.state.started_at = started_at
            c.state.finished_at = finished_at
            self._save(c)
        return c

    def _write_network_files(self, c: Container) -> None:
        directory = self.directory(c.id)
        host_net = c.host_config.get("NetworkMode") == "host"
        c.hostname_path = os.path.join(directory, "hostname")
        c.hosts_path = os.path.join(directory, "hosts")
        c.resolv_conf_path = os.path.join(directory, "resolv.conf")
        hostname = c.config.get("Hostname") or socket.gethostname()
        write_atomic(c.hostname_path, hostname + "\n", durable=False)
        if host_net:
            write_atomic(c.hosts_path, (_read("/etc/hosts") or HOSTS) + self.networks.extra_hosts(c.host_config),
                         durable=False)
            write_atomic(c.resolv_conf_path, _read("/etc/resolv.conf"), durable=False)
            return
        # rewritten at each start with the container's addresses (network/service.py); none has them
        write_atomic(c.hosts_path, HOSTS + self.networks.extra_hosts(c.host_config), durable=False)
        write_atomic(c.resolv_conf_path, _container_resolv_conf(_read("/etc/resolv.conf")), durable=False)

    # -- start -----------------------------------------------------------------
    def start(self, ref: str) -> Container:
        c = self.get(ref)
        with self._op_lock(c.id):
            if c.state.status in (RUNNING, PAUSED):
                raise errors.NotModified("container already started")
            if c.state.status in (REMOVING, DEAD):
                raise errors.Conflict(f"cannot start a container marked for removal: {c.id}")
            c.state.stopped_by_user = False
            c.state.restart_count = 0  # as dockerd: a start by the user begins a new restart history
            try:
                self._start_locked(c)
                return c
            except errors.DockyardError as e:
                failure = e
            except Exception as e:  # the host failed under us (a vanished volume dir): still a clean answer
                log.warning("starting %s failed: %r", c.id, e)
                failure = errors.SystemError_(start_error_message(e))
        if c.host_config.get("AutoRemove"):
            self.remove(c.id, force=True, volumes=True)  # as dockerd: a --rm container that cannot start is removed
        raise failure

    def _start_locked(self, c: Container) -> None:
        runtime = self.runtime(c.runtime)
        rootfs = self.rootfs(c.id)
        image = self.images.store.get(c.image_id) if hasattr(self.images, "store") else None
        image_config = ((image.config if image else {}).get("config") or {})
        if c.state.status != CREATED:
            # a previous run may have left runc state behind (daemon down at exit)
            runtime.delete(c.id, force=True)
        self.snapshotter.mount(c.id, rootfs)
        try:
            netns = None
            legacy: list[linksmod.Linked] = []
            mode = c.host_config.get("NetworkMode") or ""
            if mode.startswith("container:"):
                other = self.get(mode.split(":", 1)[1])
                if other.state.status != RUNNING:
                    raise errors.Conflict(f"cannot join network of a non running container: {other.id}")
                netns = f"/proc/{other.state.pid}/ns/net"
            else:
                legacy = linksmod.resolve(self, c)
                netns = self.networks.attach(c, c.hosts_path, c.resolv_conf_path)
                linksmod.write_hosts(c.hosts_path, legacy)
            config = c.config
            if legacy:  # the children's variables come before the container's own, as dockerd sets them
                config = {**config, "Env": linksmod.environment(legacy) + list(config.get("Env") or [])}
            spec = specmod.build(
                container_id=c.id, rootfs=rootfs, image_config=image_config, config=config,
                host_config=c.host_config,
                files=specmod.Files(c.hosts_path, c.hostname_path, c.resolv_conf_path), netns_path=netns,
                extra_mounts=mountsmod.attach(c.id, c.mounts, self.volumes, rootfs))
            self.shims.prepare(c.id, spec)
            copier = self.log_copier(c)
            if copier:
                copier.before_start()
            info = self.shims.create(
                runtime, c.id, tty=bool(c.config.get("Tty")), stdin=bool(c.config.get("OpenStdin")),
                log_path=copier.journal if copier else None,
                # with a TTY an attach's end never closes stdin (dockerd), so only pipes pass EOF on
                leave_stdin_open=bool(c.config.get("OpenStdin")) and (
                    not c.config.get("StdinOnce") or bool(c.config.get("Tty"))))
        except StartError as e:
            self._fail_start(c, runtime, str(e))
            raise errors.InvalidParameter(str(e)) from None
        except BaseException as e:
            self._fail_start(c, runtime, start_error_message(e), 128)
            raise
        with self._lock:
            pending = self._pending_attach.pop(c.id, [])
        for fut in pending:
            try:
                fut.set_result(self.shims.attach(c.id))
            except Exception as e:
                if not fut.done():
                    fut.set_exception(e)
        try:
            runtime.start(c.id)
        except errors.DockyardError as e:
            runtime.delete(c.id, force=True)
            self._fail_start(c, runtime, str(e))
            raise
        c.state = State(status=RUNNING, pid=info.pid, started_at=now_iso(),
                        restart_count=c.state.restart_count, stopped_by_user=False)
        self._save(c)
        if copier:
            self._log_copy.add(c.id, copier)
        fd = self.shims.open_pidfd(info)
        self._event(c, "start")
        if fd is None:
            threading.Thread(target=self._handle_exit, args=(c.id,), daemon=True).start()
        else:
            self._monitor.watch(c.id, fd)

    def _fail_start(self, c: Container, runtime: Runc, message: str, code: int | None = None) -> None:
        """Undo a start and end whatever waits on it: attach streams, next-exit waits (as dockerd's
        containerStart: State.Error set, ExitCode 127/126/128, streams closed)."""
        _each(c, "undoing the start of", lambda: runtime.delete(c.id, force=True), lambda: self.shims.cleanup(c.id),
              lambda: self._unmount(c), lambda: self.networks.detach(c.id))
        c.state.error = message or "container failed to start"
        c.state.exit_code = code if code is not None else \
            127 if "executable file not found" in message or "no such file" in message else \
            126 if "permission denied" in message else 128
        if c.state.status != CREATED:
            c.state.status = EXITED
        self._save_quietly(c)
        with self._lock:
            pending = self._pending_attach.pop(c.id, [])
        for fut in pending:
            if not fut.done():
                fut.set_exception(errors.Conflict(c.state.error))
        self._release_waiters(c)

    def _release_waiters(self, c: Container) -> None:
        """Answer the waits that end with this run (all but ``removed``) and wake ``wait_stopped``."""
        with self._lock:
            cond = self._exited.get(c.id)
            waiters = self._waiters.get(c.id, [])
            self._waiters[c.id] = [(k, f) for k, f in waiters if k == "removed"]
        result = self._wait_result(c)
        for kind, fut in waiters:
            if kind != "removed" and not fut.done():
                fut.set_result(result)
        if cond:
            with cond:
                cond.notify_all()

    def _unmount(self, c: Container) -> None:
        mountsmod.detach(c.id, c.mounts, self.volumes)
        try:
            self.snapshotter.unmount(self.rootfs(c.id))
        except Exception as e:
            log.warning("unmounting the rootfs of %s: %s", c.id, e)

    # -- exit ------------------------------------------------------------------
    def _handle_exit(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        with self._op_lock(container_id):
            if not c.state.running:
                return
            exit_ = self.shims.exit_status(container_id) or self.shims.lost(container_id)
            self._finish(c, exit_)
        self._after_exit(c)

    def _finish(self, c: Container, exit_: Exit) -> None:
        runtime = self.runtime(c.runtime)
        _each(c, "tearing down", lambda: runtime.delete(c.id, force=True), lambda: self.shims.cleanup(c.id),
              lambda: self._unmount(c), lambda: self.networks.detach(c.id), lambda: self._log_copy.discard(c.id))
        c.state.status = EXITED
        c.state.pid = 0
        c.state.exit_code = exit_.code
        c.state.error = exit_.error
        c.state.oom_killed = exit_.oom_killed
        c.state.finished_at = iso(exit_.at)
        self._save_quietly(c)
        if exit_.oom_killed:
            self._event(c, "oom")
        self._event(c, "die", {"exitCode": str(exit_.code)})
        self._release_waiters(c)
        copier = self.log_copier(c)
        if copier and not c.host_config.get("AutoRemove"):
            copier.finish()  # the shim wrote its last line before it exited; readers sync for themselves

    def _after_exit(self, c: Container) -> None:
        if self._closed:
            return
        if c.host_config.get("AutoRemove"):
            try:
                self.remove(c.id, force=True, volumes=True)
            except errors.NotFound:
                pass
            return
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if c.state.stopped_by_user or name == "no":
            return
        if name == "on-failure":
            if c.state.exit_code == 0:
                return
            limit = int(policy.get("MaximumRetryCount") or 0)
            if limit and c.state.restart_count >= limit:
                return
        ran = parse_iso(c.state.finished_at) - parse_iso(c.state.started_at)
        # dockerd's backoff: doubles from 100 ms, reset when the container ran for 10 s
        delay = 0.1 if ran >= 10 else min(0.1 * (2 ** c.state.restart_count), 60.0)
        with self._op_lock(c.id):
            if c.state.status != EXITED or c.state.stopped_by_user:
                return
            c.state.status = RESTARTING  # as dockerd: "Restarting (code) … ago", still listed by `ps`
            self._save(c)
        timer = threading.Timer(delay, self._restart_by_policy, args=(c.id,))
        timer.daemon = True
        timer.start()

    def _restart_by_policy(self, container_id: str, at_boot: bool = False) -> None:
        """A restart the policy asks for; ``at_boot``: by the daemon as it starts, which (as dockerd's
        restore, a start that resets the restart manager) begins a new count."""
        c = self._containers.get(container_id)
        if c is None or self._closed:
            return
        with self._op_lock(container_id):
            if c.state.stopped_by_user or c.state.status not in (EXITED, RESTARTING):
                return
            c.state.restart_count = 0 if at_boot else c.state.restart_count + 1
            try:
                self._start_locked(c)
            except Exception as e:
                log.warning("restart policy: starting %s failed: %s", container_id, e)
                if c.state.status == RESTARTING:
                    c.state.status = EXITED
                    self._save(c)
                return
        # no "restart" event here: dockerd reports a policy restart as start (after the die) only

    def _wait_result(self, c: Container) -> dict[str, Any]:
        return {"StatusCode": c.state.exit_code, "Error": {"Message": c.state.error} if c.state.error else None}

    # -- wait --------------------------------------------------------------------
    def wait(self, ref: str, condition: str = "not-running") -> concurrent.futures.Future[dict[str, Any]]:
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise errors.InvalidParameter(f"invalid condition: \"{condition}\"")
        c = self.get(ref)
        fut: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            if condition in ("", "not-running") and not c.state.running:
                fut.set_result(self._wait_result(c))
                return fut
            if condition == "removed" and c.id not in self._containers:
                fut.set_result(self._wait_result(c))
                return fut
            self._waiters.setdefault(c.id, []).append((condition or "not-running", fut))
        return fut

    def wait_stopped(self, c: Container, timeout: float | None) -> bool:
        with self._lock:
            cond = self._exited.setdefault(c.id, threading.Condition(self._lock))
            return cond.wait_for(lambda: not c.state.running, timeout)

    # -- signals -------------------------------------------------------------------
    def kill(self, ref: str, sig: int = signals.SIGKILL) -> None:
        c = self.get(ref)
        if not c.state.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        if self._cancel_restart(c):
            self._event(c, "kill", {"signal": str(sig)})
            return
        if sig in (signals.SIGKILL, signals.SIGTERM, signals.SIGINT):
            c.state.stopped_by_user = True
        self._event(c, "kill", {"signal": str(sig)})
        try:
            self.runtime(c.runtime).kill(c.id, sig, all_processes=sig == signals.SIGKILL)
        except errors.Conflict:
            pass  # it exited meanwhile
        if c.state.status == PAUSED and sig == signals.SIGKILL:
            # a frozen process cannot die; thaw it so the kill lands
            try:
                self.runtime(c.runtime).resume(c.id)
            except errors.DockyardError:
                pass
        if sig == signals.SIGKILL:
            self._wait_killed(c)

    def _wait_killed(self, c: Container) -> None:
        """As dockerd's daemon.Kill: a SIGKILL returns once the container is seen dead, so an inspect
        right after shows it exited (137); a process the runtime did not reach is killed by its pid."""
        if self.wait_stopped(c, KILL_WAIT):
            return
        pid = c.state.pid
        if pid > 0:
            try:
                os.kill(pid, signals.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.wait_stopped(c, KILL_WAIT)

    def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if not c.state.running:
            raise errors.NotModified("container already stopped")
        if self._cancel_restart(c):
            self._event(c, "stop")
            return
        stop_signal = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM", signals.SIGTERM)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        c.state.stopped_by_user = True
        try:
            self.kill(c.id, stop_signal)
        except errors.Conflict:
            pass
        if timeout < 0 or not self.wait_stopped(c, timeout):
            if timeout >= 0:
                try:
                    self.kill(c.id, signals.SIGKILL)
                except errors.Conflict:
                    pass
            self.wait_stopped(c, None)
        self._event(c, "stop")

    def _cancel_restart(self, c: Container) -> bool:
        """A container waiting out its restart backoff is stopped where it is; False if it is not waiting."""
        with self._op_lock(c.id):
            if c.state.status != RESTARTING:
                return False
            c.state.stopped_by_user = True
            c.state.status = EXITED
            self._save(c)
        with self._lock:
            cond = self._exited.get(c.id)
        if cond:
            with cond:
                cond.notify_all()
        return True

    def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.state.running:
            self.stop(c.id, timeout, sig)
        with self._op_lock(c.id):
            if not c.state.running:
                c.state.stopped_by_user = False
                self._start_locked(c)
        self._event(c, "restart")

    def pause(self, ref: str) -> None:
        c = self.get(ref)
        with self._op_lock(c.id):
            if c.state.status == PAUSED:
                raise errors.Conflict(f"Container {c.id} is already paused")
            if c.state.status != RUNNING:
                raise errors.Conflict(f"Container {c.id} is not running")
            self.runtime(c.runtime).pause(c.id)
            c.state.status = PAUSED
            self._save(c)
        self._event(c, "pause")

    def unpause(self, ref: str) -> None:
        c = self.get(ref)
        with self._op_lock(c.id):
            if c.state.status != PAUSED:
                raise errors.Conflict(f"Container {c.id} is not paused")
            self.runtime(c.runtime).resume(c.id)
            c.state.status = RUNNING
            self._save(c)
        self._event(c, "unpause")

    # -- remove, rename --------------------------------------------------------------
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """``volumes``: also remove the container's anonymous volumes (`rm -v`, `--rm`)."""
        c = self.get(ref)
        if c.state.status == RESTARTING and force:
            self._cancel_restart(c)
        if c.state.running:
            if not force:
                state = {PAUSED: "paused", RESTARTING: "restarting"}.get(c.state.status, "running")
                procedure = "Stop the container before attempting removal or force remove"
                if state == PAUSED:
                    procedure = "Unpause and then " + procedure.lower()
                raise errors.legacy(errors.Conflict(
                    f'cannot remove container "{c.name}": container is {state}: stop the container before '
                    f'removing or force remove'), f"You cannot remove a {state} container {c.id}. {procedure}")
            c.state.stopped_by_user = True
            try:
                self.kill(c.id, signals.SIGKILL)
            except errors.Conflict:
                pass
            self.wait_stopped(c, 30)
            if c.state.running:  # the shim does not report: tear down by hand
                with self._op_lock(c.id):
                    if c.state.running:
                        self._finish(c, self.shims.lost(c.id))
        with self._op_lock(c.id):
            if c.id not in self._containers:
                raise errors.NotFound(f"No such container: {ref}")
            # marked in memory only: the removal must not need disk space (dockerd's SetRemovalInProgress)
            c.state.status = REMOVING
            _each(c, "removing", lambda: self._log_copy.discard(c.id),
                  lambda: self.runtime(c.runtime).delete(c.id, force=True),
                  lambda: self.shims.cleanup(c.id), lambda: self._unmount(c),
                  lambda: self.networks.unregister(c.id))
            try:
                self.snapshotter.remove(c.id)
            except errors.NotFound:
                pass
            shutil.rmtree(self.directory(c.id), ignore_errors=True)
            with self._lock:
                self._containers.pop(c.id, None)
                if self._names.get(c.name) == c.id:
                    del self._names[c.name]
                waiters = self._waiters.pop(c.id, [])
                self._exited.pop(c.id, None)
                self._op_locks.pop(c.id, None)
                pending = self._pending_attach.pop(c.id, [])
                self._copiers.pop(c.id, None)
        for pending_attach in pending:
            if not pending_attach.done():
                pending_attach.set_exception(errors.Conflict(f"container {c.id} was removed"))
        self._event(c, "destroy")
        if volumes:
            mountsmod.remove_anonymous(c.mounts, self.volumes)
        result = self._wait_result(c)
        for _, fut in waiters:
            if not fut.done():
                fut.set_result(result)

    def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        full = namegen.normalize(new_name)
        with self._lock:
            if full == c.name:
                raise errors.InvalidParameter("Renaming a container with the same name as its current name")
            if full in self._names:
                raise errors.Conflict(
                    f'Conflict. The container name "{full}" is already in use by container '
                    f'"{self._names[full]}". You have to remove (or rename) that container to be able to '
                    f'reuse that name.')
            old = c.name
            del self._names[old]
            self._names[full] = c.id
            c.name = full
        self._save(c)
        for other in self.all():  # links name both ends: dockerd's link index follows a rename
            renamed = linksmod.renamed(other.host_config.get("Links"), old, full)
            if renamed != other.host_config.get("Links"):
                self.set_links(other, renamed)
        self.networks.rename(c.id, full)
        self._event(c, "rename", {"oldName": old})

    def set_links(self, c: Container, links: list[str] | None) -> None:
        with self._op_lock(c.id):
            c.host_config["Links"] = links
            self._save(c)

    def prune(self, keep: Callable[[Container], bool]) -> tuple[list[str], int]:
        """The stopped containers ``keep`` refuses, removed; and, as dockerd counts it, the bytes of
        their writable layers."""
        deleted = []
        reclaimed = 0
        for c in self.all():
            if c.state.running or keep(c):
                continue
            size = self.sizes(c)[0]
            try:
                self.remove(c.id)
            except errors.DockyardError:
                continue
            deleted.append(c.id)
            reclaimed += size
        return deleted, reclaimed

    # -- attach, resize ------------------------------------------------------------------
    def attach_socket(self, ref: str) -> concurrent.futures.Future[socket.socket]:
        """The shim's attach socket: now if the container runs, else when it next starts."""
        c = self.get(ref)
        fut: concurrent.futures.Future[socket.socket] = concurrent.futures.Future()
        with self._op_lock(c.id):
            if c.state.status in (RUNNING, PAUSED):
                fut.set_result(self.shims.attach(c.id))
            else:
                with self._lock:
                    self._pending_attach.setdefault(c.id, []).append(fut)
        self._event(c, "attach")
        return fut

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if not c.state.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        self.shims.resize(c.id, height, width)
        self._event(c, "resize", {"height": str(height), "width": str(width)})

    # -- logs ----------------------------------------------------------------------------
    def log_copier(self, c: Container) -> jsonlog.Copier | None:
        """The json-file copier of a container (None with the ``none`` driver)."""
        if not c.log_path:
            return None
        with self._lock:
            copier = self._copiers.get(c.id)
            if copier is None:
                policy = jsonlog.validate(c.host_config.get("LogConfig") or {}) or jsonlog.Policy()
                copier = jsonlog.Copier(self.directory(c.id), c.log_path, policy)
                self._copiers[c.id] = copier
            return copier

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
        return self.runtime(c.runtime).ps(c.id)

    # -- restore -------------------------------------------------------------------
    def _restore(self) -> None:
        """Rebuild the view from the records and the shims (live restore)."""
        to_start = []
        exited: list[Container] = []  # their shim ended while the daemon was down
        finishing: list[Callable[[], None]] = []
        for cid in sorted(os.listdir(self.root)):
            directory = os.path.join(self.root, cid)
            try:
                c = Container.load(directory)
            except (OSError, ValueError, TypeError):
                if not os.path.exists(os.path.join(directory, "config.v2.json")):
                    shutil.rmtree(directory, ignore_errors=True)  # a create that never finished
                else:
                    log.warning("skipping unreadable container record in %s", directory)
                continue
            self._containers[c.id] = c
            self._names[c.name] = c.id
            if c.state.status == REMOVING:
                threading.Thread(target=self._finish_removal, args=(c.id,), daemon=True).start()
                continue
            if c.state.status == RESTARTING:  # the daemon went down during the backoff
                c.state.status = EXITED
                to_start.append(c.id)
                continue
            if not c.state.running:
                if os.path.isdir(self.shims.bundle(c.id)) or \
                        os.path.exists(os.path.join(self.runtime(c.runtime).root, c.id)):
                    # the daemon died in a start it never acknowledged (or in an exit's teardown): undo it,
                    # or a container would run under a record that says it does not
                    finishing.append(lambda c=c: self._undo_interrupted_start(c))
                copier = self.log_copier(c)
                if copier and os.path.exists(copier.journal) and os.path.getsize(copier.journal):
                    finishing.append(copier.finish)  # copy what the shim left
                if _restart_at_boot(c):
                    to_start.append(c.id)
                continue
            info = self.shims.load(c.id)
            fd = self.shims.open_pidfd(info) if info else None
            if fd is None:
                exited.append(c)
                continue
            state = self.runtime(c.runtime).state(c.id) or {}
            c.state.status = PAUSED if state.get("status") == "paused" else RUNNING
            mountsmod.adopt(c.id, c.mounts, self.volumes)
            copier = self.log_copier(c)
            if copier:
                self._log_copy.add(c.id, copier)  # catches up with what the shim wrote while we were down
            self._monitor.watch(c.id, fd)
        # settled before the API serves: `ps` right after a restart must show their real state and exit code
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for fut in [pool.submit(self._restore_exit, c) for c in exited] + [pool.submit(f) for f in finishing]:
                fut.result()
        for cid in to_start:
            threading.Thread(target=self._restart_by_policy, args=(cid, True), daemon=True).start()

    def _undo_interrupted_start(self, c: Container) -> None:
        runtime = self.runtime(c.runtime)
        _each(c, "undoing the interrupted start of", lambda: runtime.delete(c.id, force=True),
              lambda: self.shims.cleanup(c.id), lambda: self._unmount(c), lambda: self.networks.detach(c.id))

    def _restore_exit(self, c: Container) -> None:
        with self._op_lock(c.id):
            self._finish(c, self.shims.exit_status(c.id) or self.shims.lost(c.id))
        if c.host_config.get("AutoRemove"):
            threading.Thread(target=self._after_exit, args=(c,), daemon=True).start()
        elif _restart_at_boot(c):  # dockerd's restore treats it as any stopped container
            threading.Thread(target=self._restart_by_policy, args=(c.id, True), daemon=True).start()

    def _finish_removal(self, container_id: str) -> None:
        try:
            self.remove(container_id, force=True)
        except errors.DockyardError as e:
            log.warning("finishing the removal of %s: %s", container_id, e)

    def close(self) -> None:
        """Stop watching; the containers and their shims keep running (live restore)."""
        self._closed = True
        self._monitor.close()
        self._log_copy.close()


def _each(c: Container, what: str, *steps: Callable[[], None]) -> None:
    """Run every teardown step even when one fails (a full disk failing a record write, a vanished
    path): one failure must not leave the others' state behind, nor the exit unreported."""
    for step in steps:
        try:
            step()
        except Exception as e:
            log.warning("%s %s: %r", what, c.id, e)


def start_error_message(e: BaseException) -> str:
    """An unexpected start failure in words a client can act on (dockerd's OCI errors name the path)."""
    if isinstance(e, errors.DockyardError):
        return str(e)
    if isinstance(e, OSError) and e.strerror:
        where = f" {e.filename!r}" if e.filename else ""
        return f"failed to create task for container: error preparing{where}: {e.strerror.lower()}"
    return f"failed to create task for container: {type(e).__name__}: {e}"


def _restart_at_boot(c: Container) -> bool:
    """Whether the policy restarts a stopped container when the daemon starts (dockerd's ShouldRestart)."""
    policy = c.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name == "no" or parse_iso(c.state.finished_at) == 0:
        return False
    if name == "always":
        return True  # even after `docker stop`: dockerd brings these back when it starts
    if c.state.stopped_by_user:
        return False
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return c.state.exit_code != 0 and not (limit and c.state.restart_count >= limit)
    return True


def validate_restart_policy(host_config: dict[str, Any]) -> None:
    """dockerd's checks, in its words (and dockerd 20.10's for older API versions)."""
    policy = host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or ""
    count = policy.get("MaximumRetryCount") or 0
    if not name:
        return  # dockerd keeps an empty name with any count, as older versions created it
    if name not in RESTART_POLICIES:
        raise errors.legacy(errors.InvalidParameter(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or "
            f"'unless-stopped'"), f"invalid restart policy '{name}'")
    if name != "on-failure" and count:
        text = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        raise errors.legacy(errors.InvalidParameter(text + (" and cannot be negative" if count < 0 else "")),
                            f"maximum retry count cannot be used with restart policy '{name}'")
    if count < 0:
        raise errors.legacy(errors.InvalidParameter("invalid restart policy: maximum retry count cannot be negative"),
                            "maximum retry count cannot be negative")


def _merge_log_config(log_config: dict[str, Any], config: ContainerSettings) -> dict[str, Any]:
    """As dockerd: the daemon's driver when none is named, its options under the container's own."""
    kind = log_config.get("Type") or config.log_driver
    opts = dict(log_config.get("Config") or {})
    if kind == config.log_driver:
        for key, value in config.log_opts.items():
            opts.setdefault(key, value)
    return {"Type": kind, "Config": opts}


def _merge_env(image_env: list[str], env: list[str]) -> list[str]:
    """As dockerd's merge: the container's own variables first, then the image's it did not set."""
    own = {item.partition("=")[0] for item in env}
    return list(env) + [item for item in image_env if item.partition("=")[0] not in own]


def _container_resolv_conf(host: str) -> str:
    """The host's resolv.conf without loopback servers, which do not answer inside a netns."""
    lines = []
    servers = 0
    for line in host.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1:
            if parts[1].startswith("127.") or parts[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def elapsed_since(ts: str) -> float:
    return time.time() - parse_iso(ts)
