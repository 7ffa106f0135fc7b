"""Start and exit: the task brought up on the container's rootfs, network and mounts, and torn down after."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from typing import Callable

from .. import errors
from ..runtime import spec as specmod
from ..runtime.shim import Exit, StartError
from ..util import timefmt
from . import joins
from . import links as linksmod
from . import mounts as mountsmod
from .ops import ContainerOps
from .record import Container
from .state import CREATED, DEAD, PAUSED, REMOVING, RESTARTING, RUNNING


log = logging.getLogger("dockyard.containers")


def start(svc: ContainerOps, ref: str) -> Container:
    c = svc.get(ref)
    with svc.table.op_lock(c.id):
        if c.state.status in (RUNNING, PAUSED):
            raise errors.NotModified("container already started")
        if c.state.status in (REMOVING, DEAD):
            raise errors.Conflict(f"cannot start a container marked for removal: {c.id}")
        c.state.mark_stopped_by_user(False)
        c.state.reset_restart_count()
        try:
            start_locked(svc, c)
            return c
        except errors.DockyardError as e:
            failure = e
        except Exception as e:  # the host failed under us (a vanished volume dir): still a clean answer
            log.warning("starting %s failed: %r", c.id, e)
            failure = errors.SystemError_(start_error_message(e))
    if c.host_config.get("AutoRemove"):
        svc.remove(c.id, force=True, volumes=True)  # as dockerd: a --rm container that cannot start is removed
    raise failure


def start_locked(svc: ContainerOps, c: Container) -> None:
    """Start ``c`` (its lifecycle lock held): rootfs, network, spec, shim, then the process."""
    task = svc.task(c)
    rootfs = svc.rootfs(c.id)
    image = svc.images.store.get(c.image_id) if hasattr(svc.images, "store") else None
    image_config = ((image.config if image else {}).get("config") or {})
    if c.state.status != CREATED:
        task.delete()  # a previous run may have left runtime state behind (daemon down at exit)
    svc.snapshotter.mount(c.id, rootfs)
    # the joined namespaces' descriptors, open until runc has joined them
    pinned = ExitStack()
    try:
        netns = None
        legacy: list[linksmod.Linked] = []
        mode = c.host_config.get("NetworkMode") or ""
        if "network" in c.namespaces:
            netns = joins.pinned(c, "network")
        elif mode.startswith("container:"):
            other = network_container(svc, mode.split(":", 1)[1])
            share_network(c, other)
            netns = joins.pin_network(svc, other, pinned)
        else:
            legacy = linksmod.resolve(svc, c)
            netns = svc.networks.attach(c, c.hosts_path, c.resolv_conf_path)
            linksmod.write_hosts(c.hosts_path, legacy)
        config = c.config
        if legacy:  # the children's variables come before the container's own, as dockerd sets them
            config = {**config, "Env": linksmod.environment(legacy) + list(config.get("Env") or [])}
        with pinned:
            joined = joins.prepare(svc, c, pinned)
            spec = specmod.build(
                container_id=c.id, rootfs=rootfs, image_config=image_config, config=config,
                host_config=c.host_config,
                files=specmod.Files(c.hosts_path, c.hostname_path, c.resolv_conf_path), netns_path=netns,
                pid_ns_path=joined.pid_ns, ipc_ns_path=joined.ipc_ns, shm_source=joined.shm_source,
                uts_ns_path=joined.uts_ns, pod_netns="network" in c.namespaces, extra_mounts=mountsmod.attach(c.id, c.mounts, svc.volumes, rootfs))
            copier = svc.log_copier(c)
            if copier:
                copier.before_start()
            pid = task.create(
                spec, tty=bool(c.config.get("Tty")), stdin=bool(c.config.get("OpenStdin")),
                log_path=copier.journal if copier else None,
                # with a TTY an attach's end never closes stdin (dockerd), so only pipes pass EOF on
                leave_stdin_open=bool(c.config.get("OpenStdin")) and (
                    not c.config.get("StdinOnce") or bool(c.config.get("Tty"))))
    except StartError as e:
        fail_start(svc, c, str(e))
        raise errors.InvalidParameter(str(e)) from None
    except BaseException as e:
        fail_start(svc, c, start_error_message(e), 128)
        raise
    finally:
        pinned.close()
    svc.attach_gate.open(c.id, task.attach)
    try:
        task.start()
    except errors.DockyardError as e:
        fail_start(svc, c, str(e))
        raise
    c.state.set_running(pid, timefmt.now_fixed())
    svc.save(c)
    if copier:
        svc.log_copy.add(c.id, copier)
    fd = task.exit_fd()
    svc.event(c, "start")
    if fd is None:
        threading.Thread(target=handle_exit, args=(svc, c.id), daemon=True).start()
    else:
        svc.monitor.watch(c.id, fd)


def network_container(svc: ContainerOps, ref: str) -> Container:
    """The container whose network namespace ``NetworkMode: container:<ref>`` joins, as dockerd's
    getNetworkedContainer: it must run (paused is running); errors name ``ref`` as stored."""
    other = svc.get(ref)
    if other.state.status == RESTARTING:
        raise errors.Conflict(f"Container {ref} is restarting, wait until the container is running")
    if other.state.status not in (RUNNING, PAUSED):
        raise errors.Conflict(f"cannot join network of a non running container: {ref}")
    return other


def share_network(c: Container, other: Container) -> None:
    """``c`` takes ``other``'s hostname, hosts and resolv.conf files (the very files, in ``other``'s
    directory, bound as they are at this start) and its host and domain names, as dockerd's
    initializeNetworking. Kept when ``other`` goes: ``c`` cannot start again without it anyway."""
    c.hostname_path, c.hosts_path, c.resolv_conf_path = other.hostname_path, other.hosts_path, other.resolv_conf_path
    c.config["Hostname"] = other.config.get("Hostname") or ""
    c.config["Domainname"] = other.config.get("Domainname") or ""


def fail_start(svc: ContainerOps, c: Container, message: str, code: int | None = None) -> None:
    """Undo a start and end whatever waits on it: attach streams, next-exit waits (as dockerd's
    containerStart: State.Error set, ExitCode 127/126/128, streams closed)."""
    each(c, "undoing the start of", svc.task(c).delete, lambda: unmount(svc, c),
         lambda: svc.networks.detach(c.id))
    error = message or "container failed to start"
    c.state.set_start_failed(error, code if code is not None else
                             127 if "executable file not found" in message or "no such file" in message else
                             126 if "permission denied" in message else 128)
    svc.save_quietly(c)
    svc.attach_gate.fail(c.id, errors.Conflict(error))


def unmount(svc: ContainerOps, c: Container) -> None:
    try:
        mountsmod.detach(c.id, c.mounts, svc.volumes)
    finally:
        joins.unmount_shm(svc, c.id)
    try:
        svc.snapshotter.unmount(svc.rootfs(c.id))
    except Exception as e:
        log.warning("unmounting the rootfs of %s: %s", c.id, e)


def handle_exit(svc: ContainerOps, container_id: str) -> None:
    """The shim of ``container_id`` is gone (the exit monitor's callback, on its own thread)."""
    c = svc.table.by_id(container_id)
    if c is None:
        return
    with svc.table.op_lock(container_id):
        if c.state.status not in (RUNNING, PAUSED):
            return
        teardown(svc, c, svc.task(c).exit_status())
    svc.restarts.after_exit(c)


def teardown(svc: ContainerOps, c: Container, exit_: Exit) -> None:
    """After the task ended (its lifecycle lock held): release what the run held, record the exit."""
    svc.attach_gate.close(c.id)
    each(c, "tearing down", svc.task(c).delete, lambda: unmount(svc, c), lambda: svc.networks.detach(c.id),
         lambda: svc.log_copy.discard(c.id))
    c.state.set_exited(exit_.code, exit_.oom_killed, timefmt.fixed_from_seconds(exit_.at), exit_.error)
    svc.save_quietly(c)
    if exit_.oom_killed:
        svc.event(c, "oom")
    svc.event(c, "die", {"exitCode": str(exit_.code)})
    svc.lifecycle.exited(c.id)
    copier = svc.log_copier(c)
    if copier and not c.host_config.get("AutoRemove"):
        copier.finish()  # the shim wrote its last line before it exited; readers sync for themselves


def each(c: Container, what: str, *steps: Callable[[], None]) -> None:
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
