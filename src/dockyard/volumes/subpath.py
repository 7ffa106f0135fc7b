"""A volume subpath pinned by file descriptor, so that what runc mounts is what was checked.

A container sharing the volume may swap any component of the subpath for a symlink at any moment
(to `/`, typically). So, as moby's safepath: resolve the subpath once (symlinks inside the volume
allowed, the result must stay inside it), then open the resolved path with openat2
RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: a symlink at any step fails the open, so a swap after the
check fails the start instead of being followed. The opened inode is bind-mounted through
/proc/self/fd/N onto a staging path under a root-only directory no container can reach, and that
staging path is what the OCI spec names: runc mounts it, and nobody can change what it points to.
The staging mount goes when the container's volume is released (``release``).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import posixpath
import stat

from .. import errors
from ..storage import rootfd

log = logging.getLogger(__name__)

MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)


def _mount_error(msg: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f'invalid mount config for type "volume": {msg}')


def resolve(base: str, subpath: str) -> str:
    """``subpath`` with the volume's symlinks resolved, relative to ``base``; refused if it leaves ``base``.

    Only a check and a spelling: the path is opened later without following any symlink.
    """
    real_base = os.path.realpath(base)
    try:
        path = os.path.realpath(os.path.join(real_base, subpath))
    except OSError as e:  # a component changed kind while it was read (a swap under way); 400, as at create
        raise errors.InvalidParameter(f"cannot access path {posixpath.join(real_base, subpath)}: "
                              f"{(e.strerror or str(e)).lower()}") from None
    if path != real_base and not path.startswith(real_base + "/"):
        raise _mount_error(f"subpath escapes the volume: {subpath}")
    return os.path.relpath(path, real_base)


def _open_beneath(base: str, relative: str) -> int:
    """An O_PATH fd of ``base/relative``; a symlink anywhere on the way (``base`` included) fails the open."""
    try:
        base_fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise errors.NotFound(f"cannot access path {base}: {e.strerror.lower()}") from None
    try:
        return rootfd.openat2(base_fd, relative, os.O_PATH,
                              resolve=rootfd.RESOLVE_BENEATH | rootfd.RESOLVE_NO_SYMLINKS
                              | rootfd.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if e.errno == errno.EXDEV:
            raise _mount_error(f"subpath escapes the volume: {relative}") from None
        # ELOOP: a component became a symlink since resolve(); as moby, a 404 naming the path
        raise errors.NotFound(f"cannot access path {posixpath.join(base, relative)}: "
                              f"{e.strerror.lower()}") from None
    finally:
        os.close(base_fd)


def pin(base: str, subpath: str, staging: str) -> str:
    """Bind ``base/subpath`` (refusing symlinks on the way) onto the new path ``staging``; returns it."""
    fd = _open_beneath(base, resolve(base, subpath))
    try:
        os.makedirs(os.path.dirname(staging), mode=0o700, exist_ok=True)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.mkdir(staging, 0o700)
        else:
            os.close(os.open(staging, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        if _libc.mount(f"/proc/self/fd/{fd}".encode(), staging.encode(), b"none", MS_BIND, None) != 0:
            err = ctypes.get_errno()
            _remove(staging)
            raise errors.SystemError_(f"failed to mount resolved path: {os.strerror(err)}")
    finally:
        os.close(fd)
    return staging


def release(directory: str) -> None:
    """Unmount and remove the staging paths in ``directory`` (one container's pins of one volume), then it.

    Each entry is unmounted whatever it looks like: a bind mount from the same filesystem is not
    told apart by its device number. Nothing is ever removed recursively: an entry still mounted
    would take the volume's content with it.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(directory, name)
        _libc.umount2(path.encode(), MNT_DETACH)
        _remove(path)
    _remove(directory)


def _remove(path: str) -> None:
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # still mounted (EBUSY) or not empty: left, never emptied
        log.warning("leaving %s: %s", path, e)
