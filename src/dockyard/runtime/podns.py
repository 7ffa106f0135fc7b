"""Namespaces held without a process: made by a short-lived thread and pinned by bind mounts on files.

A pod's network, IPC and UTS namespaces outlive every container of the pod, so they are not a
process's: a thread unshares them, sets what must be set inside (the hostname, the namespaced sysctls),
bind-mounts each ``/proc/thread-self/ns/<kind>`` onto a file, and returns to the daemon's namespaces.
Containers then join the files by path (runc's ``namespaces[].path``). The files sit under the exec
root, which only root can enter, and a pin names one namespace for as long as it is mounted: unlike
``/proc/<pid>/ns/*``, no process exit or pid reuse can make it name another.

Also the pod's ``/dev/shm``: a tmpfs its containers bind, as they share the IPC namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
from typing import Iterator

from .. import errors

_libc = ctypes.CDLL(None, use_errno=True)
MS_BIND = 4096
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2
FLAGS = {"net": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000}
# the sysctls a namespace of each kind owns (what runc and the kubelet call namespaced)
_IPC_SYSCTL = re.compile(r"kernel\.(shm[a-z_]*|msg[a-z_]*|sem)$|fs\.mqueue\.[a-z_]+$")
_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+)+")
_WORDS = {"net": "network", "ipc": "IPC", "uts": "UTS"}
MAX_SYSCTLS = 256
MAX_SYSCTL_VALUE = 4096


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def sysctl_kind(name: str) -> str:
    """The namespace kind a sysctl belongs to; InvalidParameter for one no namespace owns (it would
    change the host's)."""
    name = name.replace("/", ".")
    if not _NAME.fullmatch(name):
        raise errors.InvalidParameter(f"invalid sysctl name {name!r}")
    if name.startswith("net."):
        return "net"
    if _IPC_SYSCTL.match(name):
        return "ipc"
    if name in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    raise errors.InvalidParameter(f"sysctl {name!r} is not namespaced and cannot be set for a pod")


def check_sysctls(sysctls: dict[str, str], kinds: set[str]) -> None:
    """Every sysctl names a namespace of ``kinds`` (the ones the pod has of its own), values bounded."""
    if len(sysctls) > MAX_SYSCTLS:
        raise errors.InvalidParameter(f"too many sysctls ({len(sysctls)}, at most {MAX_SYSCTLS})")
    for name, value in sysctls.items():
        kind = sysctl_kind(name)
        if kind not in kinds:
            raise errors.InvalidParameter(f"sysctl {name!r} needs a {_WORDS[kind]} namespace of the pod's own, "
                                          "not the host's")
        if len(value) > MAX_SYSCTL_VALUE or "\n" in value or "\0" in value:
            raise errors.InvalidParameter(f"invalid value for sysctl {name!r}")


def hold(paths: dict[str, str], hostname: str = "", sysctls: dict[str, str] | None = None) -> None:
    """New namespaces of the kinds in ``paths`` (``net``, ``ipc``, ``uts``), each pinned at its path;
    the hostname set in the UTS one, ``sysctls`` written in the namespaces they belong to (checked
    with ``check_sysctls`` first). On a failure nothing is left pinned."""
    sysctls = sysctls or {}
    check_sysctls(sysctls, set(paths))
    unknown = set(paths) - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown namespace kinds {sorted(unknown)}")
    for path in paths.values():
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with _returning(list(paths)):
                flags = 0
                for kind in paths:
                    flags |= FLAGS[kind]
                _check(_libc.unshare(flags), "unshare")
                if hostname and "uts" in paths:
                    raw = hostname.encode()
                    _check(_libc.sethostname(raw, len(raw)), "setting the hostname")
                for name, value in sysctls.items():
                    with open("/proc/sys/" + name.replace(".", "/"), "w", encoding="utf-8") as f:
                        f.write(value)
                for kind, path in paths.items():
                    os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o444))
                    _check(_libc.mount(f"/proc/thread-self/ns/{kind}".encode(), path.encode(), b"none",
                                       MS_BIND, None), f"bind-mounting the {kind} namespace")
        except BaseException as e:
            failure.append(e)

    t = threading.Thread(target=run, name="podns-hold")
    t.start()
    t.join()
    if failure:
        for path in paths.values():
            release(path)
        e = failure[0]
        if isinstance(e, OSError):
            raise errors.SystemError_(f"making the pod's namespaces: {e}") from None
        raise e


def pin(source: str, path: str) -> None:
    """Pin the namespace ``source`` (e.g. ``/proc/<pid>/ns/net``) at ``path``, so it outlives the process."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o444))
    try:
        _check(_libc.mount(source.encode(), path.encode(), b"none", MS_BIND, None),
               f"bind-mounting the namespace {source}")
    except OSError:
        release(path)
        raise


def release(path: str) -> None:
    """The pin (or tmpfs) at ``path`` unmounted and its file gone; nothing there is fine."""
    _libc.umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except IsADirectoryError:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def held(path: str) -> bool:
    """Something is mounted at ``path`` (a pinned namespace, a tmpfs), not a stale file."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def mount_shm(path: str, size: int) -> None:
    """A pod's (or a shareable container's) /dev/shm: a tmpfs of ``size`` bytes at ``path``."""
    if held(path):
        return
    os.makedirs(path, mode=0o700, exist_ok=True)
    _check(_libc.mount(b"shm", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       f"mode=1777,size={int(size)}".encode()), "mounting /dev/shm")


@contextlib.contextmanager
def _returning(kinds: list[str]) -> Iterator[None]:
    own = {kind: os.open(f"/proc/thread-self/ns/{kind}", os.O_RDONLY) for kind in kinds}
    try:
        yield
    finally:
        for kind, fd in own.items():
            # a thread left in a pod's namespace would serve the daemon from there: fatal
            if _libc.setns(fd, FLAGS[kind]) != 0:
                os.abort()
            os.close(fd)


@contextlib.contextmanager
def entered(path: str, kind: str) -> Iterator[None]:
    """Run the body on this thread inside the ``kind`` namespace pinned at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _returning([kind]):
            _check(_libc.setns(fd, FLAGS[kind]), f"entering the {kind} namespace")
            yield
    finally:
        os.close(fd)
