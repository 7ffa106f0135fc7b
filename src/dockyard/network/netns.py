"""Named network namespaces under the exec root, and running code inside one.

A namespace is created by a short-lived thread that unshares its own network
namespace, bind-mounts it onto a file and returns to the daemon's; code that
must act inside one (netlink sockets, the DNS listener) enters it on the calling
thread and always comes back. Sockets keep the namespace they were created in.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from typing import Iterator

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def create(path: str) -> None:
    """A new, empty network namespace pinned at ``path``."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with _returning():
                _check(_libc.unshare(CLONE_NEWNET), "unshare")
                os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o444))
                _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
                       "bind-mounting the network namespace")
        except BaseException as e:
            failure.append(e)

    t = threading.Thread(target=run, name="netns-create")
    t.start()
    t.join()
    if failure:
        remove(path)
        raise failure[0]


def pin(source: str, path: str) -> None:
    """Pin the namespace ``source`` (e.g. ``/proc/<pid>/ns/net``) at ``path``, so it outlives the process."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o444))
    try:
        _check(_libc.mount(source.encode(), path.encode(), b"none", MS_BIND, None),
               f"bind-mounting the network namespace {source}")
    except OSError:
        remove(path)
        raise


def remove(path: str) -> None:
    _libc.umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def exists(path: str) -> bool:
    """A pinned namespace (a file that is a mount of nsfs), not a stale file."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


@contextlib.contextmanager
def _returning() -> Iterator[None]:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        yield
    finally:
        # a thread left in a container's namespace would serve the daemon from there: fatal
        if _libc.setns(own, CLONE_NEWNET) != 0:
            os.abort()
        os.close(own)


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the body on this thread inside the namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        with _returning():
            _check(_libc.setns(fd, CLONE_NEWNET), "entering the network namespace")
            yield
    finally:
        os.close(fd)
