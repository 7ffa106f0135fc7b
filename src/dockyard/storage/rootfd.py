"""File descriptors below a root directory that nothing inside the root can lead out of it.

Every path below a container root (or an image, a build context, a layer) is
opened with openat2(2) ``RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`` relative to
a descriptor of the root: the kernel resolves each symlink and ``..`` as if the
process were chrooted there, in the same walk that opens the file, so a
container swapping a directory for a symlink between two calls can at worst
send the open elsewhere *inside* its own root. Callers then work only through
the descriptors they got (``dir_fd=`` calls with ``O_NOFOLLOW`` leaves,
``os.scandir(fd)``, ``fchmod``...), never through a path string again.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from typing import Iterator

# linux/openat2.h
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
PATH_FLAGS = os.O_PATH | os.O_CLOEXEC

_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437}
# the kernel answers EAGAIN when a rename or mount raced a ".." walk; a hostile root can make it
# happen on purpose, so retries are bounded and the last one is an error
_EAGAIN_TRIES = 128


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_NR = _SYS_OPENAT2.get(platform.machine())


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = IN_ROOT) -> int:
    """openat2(2): a new descriptor (close-on-exec) or OSError with the kernel's errno."""
    if _NR is None:
        raise OSError(errno.ENOSYS, f"openat2 is not wired for {platform.machine()}")
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = os.fsencode(path)
    for _ in range(_EAGAIN_TRIES):
        fd = _syscall(ctypes.c_long(_NR), ctypes.c_int(dirfd), ctypes.c_char_p(raw), ctypes.byref(how),
                      ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, "the root kept changing under the lookup", path)


def open_root(path: str) -> int:
    """A descriptor pinning ``path`` as a root (``/proc/PID/root`` pins a live container's mount tree)."""
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def components(path: str) -> list[str]:
    """``path``'s names, without empty and ``.`` parts (``..`` is left to the kernel's in-root walk)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def open_in(root: int, path: str, flags: int = PATH_FLAGS, *, follow_last: bool = True, mode: int = 0) -> int:
    """``path`` opened below the root descriptor ``root``, as a process chrooted there would open it.

    Without ``follow_last`` a final symlink is opened itself (``O_PATH | O_NOFOLLOW`` gives a
    descriptor of the link).
    """
    rel = "/".join(components(path)) or "."
    return openat2(root, rel, flags | (0 if follow_last else os.O_NOFOLLOW), mode)


def open_parent(root: int, path: str) -> tuple[int, str]:
    """(directory descriptor, name) for ``path`` below ``root``: its parent and its last name, or the
    directory itself and ``.`` when the path names a directory by ``..`` or names the root."""
    parts = components(path)
    if not parts or parts[-1] == "..":
        return open_in(root, "/".join(parts), DIR_FLAGS), "."
    return open_in(root, "/".join(parts[:-1]), DIR_FLAGS), parts[-1]


def reopen(fd: int, flags: int) -> int:
    """A new descriptor of the same inode as the ``O_PATH`` descriptor ``fd``, never of another file."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


def lexists(root: int, path: str) -> bool:
    try:
        fd = open_in(root, path, follow_last=False)
    except OSError:
        return False
    os.close(fd)
    return True


def walk(dirfd: int) -> Iterator[tuple[str, int, os.DirEntry[str]]]:
    """(relative name, descriptor of its directory, entry) for everything below the directory ``dirfd``,
    sorted, parents first.

    Only real directories are entered, each by a descriptor opened ``O_NOFOLLOW`` from its parent's,
    so a directory swapped for a symlink meanwhile is not followed (it is skipped). Iterative: a
    container's tree may be deeper than Python's recursion limit.
    """
    stack: list[tuple[int, str, Iterator[os.DirEntry[str]]]] = [(dirfd, "", _listing(dirfd))]
    try:
        while stack:
            fd, prefix, entries = stack[-1]
            e = next(entries, None)
            if e is None:
                stack.pop()
                if fd != dirfd:
                    os.close(fd)
                continue
            rel = prefix + e.name
            yield rel, fd, e
            try:
                is_dir = stat.S_ISDIR(e.stat(follow_symlinks=False).st_mode)
            except OSError:
                continue
            if is_dir:
                try:
                    sub = os.open(e.name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue  # gone or swapped for a link since it was listed (or out of descriptors)
                stack.append((sub, rel + "/", _listing(sub)))
    finally:
        for fd, _, _ in stack:
            if fd != dirfd:
                os.close(fd)


def _listing(fd: int) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(fd) as it:
            return iter(sorted(it, key=lambda e: e.name))
    except OSError:
        return iter(())
