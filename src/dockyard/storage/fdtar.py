"""Tar streams of trees read through descriptors only: cp out, export, diff, commit, volume copy-up.

Entries are found by ``rootfd.walk`` (directories entered ``O_NOFOLLOW`` from
their parent's descriptor) and a regular file's content is read from the
descriptor whose ``fstat`` made its header: opened ``O_PATH | O_NOFOLLOW``
first, then reopened through ``/proc/self/fd``, so a name swapped meanwhile
for a symlink, a FIFO or a device is never followed, waited on or opened.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Iterator

from . import rootfd

CHUNK = 1024 * 1024
_TYPES = {stat.S_IFDIR: tarfile.DIRTYPE, stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFIFO: tarfile.FIFOTYPE,
          stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFREG: tarfile.REGTYPE}


class TreeTar:
    """A tar being written entry by entry into ``out``; the caller takes chunks as it fills."""

    def __init__(self, xattrs: bool = False) -> None:
        self.out = bytearray()
        self.xattrs = xattrs  # SCHILY.xattr records (layers), not trusted.overlay.* ones
        self._inodes: dict[tuple[int, int], str] = {}  # hard links, as tarfile.gettarinfo finds them

    def take(self, force: bool = False) -> Iterator[bytes]:
        if self.out and (force or len(self.out) >= CHUNK):
            data = bytes(self.out)
            self.out.clear()
            yield data

    def raw(self, info: tarfile.TarInfo) -> None:
        self.out += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def add(self, dirfd: int, name: str, st: os.stat_result, arc: str) -> Iterator[bytes]:
        """The entry ``name`` of the directory ``dirfd`` (``st`` its lstat) as ``arc``; nothing if it
        is a socket or changed type since it was listed."""
        if stat.S_ISREG(st.st_mode):
            try:
                fd = _open_regular(dirfd, name)
            except OSError:
                return  # vanished under a running container
            if fd is None:
                return
            try:
                yield from self._regular(fd, os.fstat(fd), arc, dirfd, name)
            finally:
                os.close(fd)
            return
        link = ""
        if stat.S_ISLNK(st.st_mode):
            try:
                link = os.readlink(name, dir_fd=dirfd)
            except OSError:
                return
        info = self._info(st, arc, link)
        if info is None:
            return
        if self.xattrs:
            _add_xattrs(info, f"/proc/self/fd/{dirfd}/{name}")
        self.raw(info)
        yield from self.take()

    def add_fd(self, fd: int, arc: str) -> Iterator[bytes]:
        """The file the ``O_PATH`` descriptor ``fd`` holds (a symlink itself if it is one) as ``arc``."""
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            data = rootfd.reopen(fd, os.O_RDONLY)
            try:
                yield from self._regular(data, os.fstat(data), arc, None, "")
            finally:
                os.close(data)
            return
        link = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        info = self._info(st, arc, link)
        if info is not None:
            if self.xattrs and stat.S_ISDIR(st.st_mode):
                _add_xattrs(info, f"/proc/self/fd/{fd}")
            self.raw(info)
        yield from self.take()

    def _info(self, st: os.stat_result, arc: str, link: str) -> tarfile.TarInfo | None:
        kind = _TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            return None  # a socket: tar has no entry for it
        info = tarfile.TarInfo(arc)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime
        info.uname = info.gname = ""
        info.linkname = link
        if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        return info

    def _regular(self, fd: int, st: os.stat_result, arc: str, dirfd: int | None, name: str) -> Iterator[bytes]:
        info = self._info(st, arc, "")
        assert info is not None
        if self.xattrs:
            _add_xattrs(info, fd)
        if st.st_nlink > 1:
            key = (st.st_ino, st.st_dev)
            first = self._inodes.setdefault(key, arc)
            if first != arc:
                info.type, info.linkname = tarfile.LNKTYPE, first
                self.raw(info)
                yield from self.take()
                return
        info.size = st.st_size
        self.raw(info)
        left = st.st_size
        while left > 0:
            data = os.read(fd, min(CHUNK, left))
            if not data:
                data = b"\0" * left  # shrank while read: keep the header's size
            self.out += data
            left -= len(data)
            yield from self.take()
        self.out += b"\0" * (-st.st_size % tarfile.BLOCKSIZE)
        yield from self.take()

    def end(self) -> Iterator[bytes]:
        self.out += b"\0" * (tarfile.BLOCKSIZE * 2)
        yield from self.take(force=True)


def _open_regular(dirfd: int, name: str) -> int | None:
    """``name`` opened for reading if it is a regular file now, else None; never follows or opens anything else."""
    path = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        if not stat.S_ISREG(os.fstat(path).st_mode):
            return None
        return rootfd.reopen(path, os.O_RDONLY)
    finally:
        os.close(path)


def _add_xattrs(info: tarfile.TarInfo, where: int | str) -> None:
    """``where`` is a descriptor, or a ``/proc/self/fd/N/name`` path looked up without following its last name."""
    try:
        if isinstance(where, int):
            keys = os.listxattr(where)
            values = [os.getxattr(where, k) for k in keys if not k.startswith("trusted.overlay.")]
        else:
            keys = os.listxattr(where, follow_symlinks=False)
            values = [os.getxattr(where, k, follow_symlinks=False) for k in keys
                      if not k.startswith("trusted.overlay.")]
    except OSError:
        return
    keys = [k for k in keys if not k.startswith("trusted.overlay.")]
    for key, value in zip(keys, values):
        info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")


def tree(top: int, name: str, *, skip_root: bool = False, xattrs: bool = False) -> Iterator[bytes]:
    """The file the ``O_PATH`` descriptor ``top`` holds (not followed if a symlink) and, if a directory,
    everything below it, as a tar whose entries start with ``name``; chunks of ~1 MiB."""
    tw = TreeTar(xattrs)
    if not skip_root:
        yield from tw.add_fd(top, name)
    if stat.S_ISDIR(os.fstat(top).st_mode):
        dfd = rootfd.reopen(top, rootfd.DIR_FLAGS)
        try:
            for rel, parent, entry in rootfd.walk(dfd):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield from tw.add(parent, entry.name, st, f"{name}/{rel}" if name else rel)
        finally:
            os.close(dfd)
    yield from tw.end()
