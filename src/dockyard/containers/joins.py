"""Joining another container's PID or IPC namespace (``PidMode``/``IpcMode: container:<ref>``), and the
daemon-side /dev/shm of a ``shareable`` IPC container that its joiners bind.

The namespaces are handed to runc as descriptors the daemon holds open, never as ``/proc/<pid>/ns/*``
paths: between resolving the target and runc opening the path, the target may exit and its pid be
reused by a process of another container (or of the host). The daemon opens the namespace file once,
proves the process it came from is still the target's init, and passes ``/proc/<daemon>/fd/<fd>``.
"""

from __future__ import annotations

import os
import select
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors
from ..model import container as model
from ..runtime import podns
from .ops import ContainerOps
from .record import Container
from .state import PAUSED, RESTARTING, RUNNING

SHAREABLE = "shareable"


@dataclass(frozen=True)
class Joins:
    """What ``runtime.spec.build`` needs to join the namespaces: paths valid while the stack is open."""
    pid_ns: str | None = None
    ipc_ns: str | None = None
    shm_source: str | None = None  # a host directory bound at /dev/shm in place of a tmpfs of its own
    uts_ns: str | None = None


def target_ref(mode: str | None) -> str | None:
    return mode.split(":", 1)[1] if mode and mode.startswith("container:") else None


def shm_path(svc: ContainerOps, container_id: str) -> str:
    return os.path.join(svc.directory(container_id), "mounts", "shm")


def prepare(svc: ContainerOps, c: Container, stack: ExitStack) -> Joins:
    """Resolve ``c``'s PID and IPC targets and pin their namespaces (closed when ``stack`` closes);
    mount ``c``'s own shareable /dev/shm. Errors in dockerd's words (daemon/container_operations_unix.go)."""
    hc = c.host_config
    pid_ref = target_ref(hc.get("PidMode"))
    pid_ns = _pin(_running(svc, pid_ref, ipc=False), "pid", stack) if pid_ref else None
    uts_ns = pinned(c, "uts") if "uts" in c.namespaces else None
    if "ipc" in c.namespaces:  # a pod's: its /dev/shm comes with it
        return Joins(pid_ns, pinned(c, "ipc"), c.namespaces.get("shm"), uts_ns)
    ipc_ns = shm = None
    ipc_mode = hc.get("IpcMode") or ""
    ipc_ref = target_ref(ipc_mode)
    if ipc_ref:
        other = _running(svc, ipc_ref, ipc=True)
        shm = shm_path(svc, other.id)
        if not os.path.ismount(shm):
            raise errors.SystemError_(f"can't join IPC of container {other.id}: non-shareable IPC "
                                      "(hint: use IpcMode:shareable for the donor container)")
        ipc_ns = _pin(other, "ipc", stack)
    elif ipc_mode == SHAREABLE:
        shm = _mount_shm(svc, c)
    return Joins(pid_ns, ipc_ns, shm, uts_ns)


PINNED_KINDS = ("network", "ipc", "uts", "shm")


def check_pinned(namespaces: dict[str, str], host_config: dict[str, Any]) -> dict[str, str]:
    """The pinned namespaces a container is created to join: known kinds, absolute paths, and no mode in
    the body that says otherwise (a host or container: mode of the same kind)."""
    for kind, path in namespaces.items():
        if kind not in PINNED_KINDS or not isinstance(path, str) or not os.path.isabs(path):
            raise errors.InvalidParameter(f"invalid pinned namespace {kind}={path!r}")
    modes = {"network": host_config.get("NetworkMode"), "ipc": host_config.get("IpcMode"),
             "uts": host_config.get("UTSMode")}
    for kind, mode in modes.items():
        if kind in namespaces and mode not in (None, "", "none", "private"):
            raise errors.InvalidParameter(f"a container joining a pinned {kind} namespace cannot have mode {mode!r}")
    if "shm" in namespaces and "ipc" not in namespaces:
        raise errors.InvalidParameter("a pinned /dev/shm needs the pinned IPC namespace it belongs to")
    return dict(namespaces)


def pinned(c: Container, kind: str) -> str:
    """``c``'s pinned ``kind`` namespace, which must still be there: a pod stopped (or the host rebooted)
    since the create took it away."""
    path = c.namespaces[kind]
    if not podns.held(path):
        raise errors.Conflict(f"the {kind} namespace {path} that container {c.id} joins is gone")
    return path


def unmount_shm(svc: ContainerOps, container_id: str) -> None:
    """The shareable /dev/shm unmounted (a no-op for every other container)."""
    path = shm_path(svc, container_id)
    if os.path.ismount(path):
        # lazily: a joiner still running keeps its own bind, as with dockerd's detached unmount
        podns.release(path)


def check_targets(host_config: dict[str, Any], get: Callable[[str], Container]) -> None:
    """At create, as dockerd: a PID or IPC target that does not exist is a bad request."""
    for key in ("PidMode", "IpcMode"):
        ref = target_ref(host_config.get(key))
        if ref:
            try:
                get(ref)
            except errors.NotFound as e:
                raise errors.InvalidParameter(str(e)) from None


def _running(svc: ContainerOps, ref: str, ipc: bool) -> Container:
    """dockerd's getPidContainer/getIpcContainer: the target exists, runs and is not restarting
    (its checkContainer errors, which the IPC check prefixes with the target's ID)."""
    try:
        other = svc.get(ref)
    except errors.NotFound as e:  # gone since the create
        what = f"can't join IPC of container {ref}" if ipc else f"cannot join PID of a non running container: {ref}"
        raise errors.NotFound(f"{what}: {e}") from None
    prefix = f"can't join IPC of container {other.id}: " if ipc else ""
    if other.state.status == RESTARTING:
        raise errors.SystemError_(f"{prefix}container {other.id} is restarting, wait until the container is running")
    if other.state.status not in (RUNNING, PAUSED):
        raise errors.SystemError_(f"{prefix}container {other.id} is not running")
    return other


def _pin(other: Container, kind: str, stack: ExitStack) -> str:
    """``other``'s ``kind`` namespace opened in the daemon; the path runc opens is our descriptor."""
    pid = other.state.pid
    stale = errors.SystemError_(f"container {other.id} is not running")
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise stale from None
    try:
        try:
            ns = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise stale from None
        stack.callback(os.close, ns)
        # the pidfd names the process the namespace file and the cgroup file came from unless it has
        # exited since (then it polls readable); that process must be in the target's cgroup, or the
        # pid was reused (by a process of another container or of the host) before the pidfd was opened
        if not _in_cgroup_of(pid, other.id) or select.select([pidfd], [], [], 0)[0]:
            raise stale
    finally:
        os.close(pidfd)
    return f"/proc/{os.getpid()}/fd/{ns}"


def _in_cgroup_of(pid: int, container_id: str) -> bool:
    """``pid`` is in the cgroup of the container (cgroupfs ``…/<id>``, systemd ``…/<prefix>-<id>.scope``),
    or below it (a container that manages its own cgroups)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        for part in line.split(":", 2)[-1].split("/"):
            if part == container_id or (part.endswith(f"-{container_id}.scope")):
                return True
    return False


def pin_network(svc: ContainerOps, other: Container, stack: ExitStack) -> str:
    """``other``'s network namespace, pinned as its PID and IPC ones are (``--network container:``)."""
    return _pin(other, "net", stack)


def _mount_shm(svc: ContainerOps, c: Container) -> str:
    path = shm_path(svc, c.id)
    podns.mount_shm(path, c.host_config.get("ShmSize") or model.DEFAULT_SHM_SIZE)
    return path
