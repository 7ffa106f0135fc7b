"""A stopped container's root with its volumes and bind mounts in place, for docker cp (as dockerd's
archive code mounts them for the copy), in a mount namespace of its own.

A helper process (this module run as a program) unshares its mount namespace, makes every mount in
it private (so nothing it mounts reaches the host's namespace), and bind-mounts each source onto its
mount point. The mount point is opened below the container's root with openat2 ``RESOLVE_IN_ROOT``
and mounted on through ``/proc/self/fd/N``: a symlink the container planted in the path leads
somewhere inside its own root, never to a host directory. The daemon then holds a descriptor of the
root as the helper sees it (``/proc/PID/root/<rootfs>``): lookups from it cross the helper's mounts,
as lookups through ``/proc/PID/root`` of a running container cross that container's. The mounts go
with the helper's namespace when the copy ends and the helper exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import stat
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Iterator

from .. import errors
from ..storage import rootfd
from ..storage.rootpath import resolve_parts

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x20, 0x1000, 0x4000, 0x40000
READY = "ready"
HELPER_WAIT = 10.0


@dataclass
class Bind:
    source: str  # a host path the daemon chose (a volume's directory) or the administrator gave (-v /h:/c)
    destination: str  # inside the container: resolved below its root, never on the host
    rw: bool = True
    recursive: bool = True


@contextlib.contextmanager
def root_with_mounts(rootfs: str, binds: list[Bind]) -> Iterator[int]:
    """A descriptor of ``rootfs`` (mounted) with ``binds`` mounted below it, for as long as the block runs."""
    helper = subprocess.Popen([sys.executable, "-I", "-m", __name__], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
    assert helper.stdin is not None and helper.stdout is not None
    try:
        helper.stdin.write((json.dumps({"rootfs": rootfs, "binds": [asdict(b) for b in binds]}) + "\n").encode())
        helper.stdin.flush()
        answer = helper.stdout.readline().decode(errors="replace").strip()
        if answer != READY:
            raise errors.SystemError_(f"mounting the container's volumes for the copy: "
                                      f"{answer or 'the helper exited'}")
        fd = rootfd.open_root(f"/proc/{helper.pid}/root/{rootfs.lstrip('/')}")
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        helper.stdin.close()  # the helper's signal to end, and its mounts with it
        try:
            helper.wait(HELPER_WAIT)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
        helper.stdout.close()


# -- the helper ----------------------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(), None, ctypes.c_ulong(flags), None),
           "mount")


def _mount_point(root: int, destination: str, is_dir: bool) -> int:
    """``destination`` below ``root``, made (directories, then a directory or an empty file) when missing,
    as dockerd makes a mount point; an ``O_PATH`` descriptor of it."""
    # where the container's links lead, inside its root: a link planted at the mount point is followed
    # there (as runc follows it at a start), and the missing part is made along that path
    parts = resolve_parts(root, destination)
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        try:
            os.close(rootfd.open_in(root, path))
            continue
        except FileNotFoundError:
            pass
        parent, name = rootfd.open_parent(root, path)
        try:
            if depth < len(parts) or is_dir:
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755,
                                 dir_fd=parent))
        except FileExistsError:
            pass
        finally:
            os.close(parent)
    return rootfd.open_in(root, "/".join(parts))


def _bind(root: int, bind: Bind) -> None:
    source = os.open(bind.source, os.O_PATH | os.O_CLOEXEC)
    try:
        is_dir = stat.S_ISDIR(os.fstat(source).st_mode)
        target = _mount_point(root, bind.destination, is_dir)
        try:
            _mount(f"/proc/self/fd/{source}", f"/proc/self/fd/{target}",
                   MS_BIND | (MS_REC if bind.recursive else 0))
        finally:
            os.close(target)
        if not bind.rw:
            mounted = rootfd.open_in(root, bind.destination)
            try:
                _mount(None, f"/proc/self/fd/{mounted}", MS_BIND | MS_REMOUNT | MS_RDONLY)
            finally:
                os.close(mounted)
    finally:
        os.close(source)


def _serve() -> int:
    request = json.loads(sys.stdin.readline())
    try:
        _check(_libc.unshare(CLONE_NEWNS), "unshare")
        # first of all: nothing mounted here may propagate to the host's namespace
        _mount(None, "/", MS_REC | MS_PRIVATE)
        root = rootfd.open_root(request["rootfs"])
        binds = [Bind(**b) for b in request["binds"]]
        # parents first, so that a mount inside another volume lands on the mounted volume
        for bind in sorted(binds, key=lambda b: len(rootfd.components(b.destination))):
            try:
                _bind(root, bind)
            except OSError as e:
                raise OSError(e.errno, f"{bind.destination}: {e.strerror}") from None
    except OSError as e:
        print(f"{e.strerror or os.strerror(e.errno or errno.EIO)}", flush=True)
        return 1
    print(READY, flush=True)
    sys.stdin.read()  # until the daemon is done with the copy
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
