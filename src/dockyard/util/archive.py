"""Safe tar extraction: layers now, `docker cp` and build contexts later.

Every entry is placed by walking its parent directories one component at a
time with directory file descriptors (``O_NOFOLLOW``), so a symlink met on
the way (one created earlier by the same tar, or already in the target) is
resolved *inside* the target, as a chroot would resolve it: nothing can be
written outside ``dest`` whatever the names, link targets or entry order.
Symlinks themselves are created as-is; their targets are never followed
when writing the symlink entry itself.

Whiteouts (``.wh.NAME``, ``.wh..wh..opq``) are handled per ``whiteouts``:
``"overlay"`` stores them as the kernel's overlayfs does (char device 0/0,
``trusted.overlay.opaque=y``), ``"apply"`` deletes the named paths from
``dest`` (a full-copy snapshot), ``None`` treats them as ordinary files.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import IO, Callable, Iterator, Literal

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_SYMLINK_HOPS = 40
COPY_CHUNK = 1024 * 1024
_ZEROS = bytes(COPY_CHUNK)

Whiteouts = Literal["overlay", "apply"] | None
PayloadHook = Callable[[tarfile.TarInfo, str], None]


class UnsafeArchive(Exception):
    """An entry tried to leave the target or do something the caller forbids."""


@dataclass
class ExtractResult:
    size: int = 0  # bytes of regular file content written
    entries: int = 0
    _dir_times: list[tuple[str, int]] = field(default_factory=list)


class ForwardReader:
    """A forward-only stream that tarfile can read in its seekable mode.

    tarfile's stream mode ("r|") re-copies its whole read-ahead buffer on
    every read, i.e. about a megabyte per 512-byte header; here reads are
    slices of the chunk in hand, and file contents can be written from it
    without another copy. Seeking goes forward by reading, or back only
    within the chunk in hand (tarfile steps back one byte after a member
    whose data ends on a block boundary); anything else is refused.
    """

    def __init__(self, raw: IO[bytes], chunk: int = COPY_CHUNK) -> None:
        self._raw = raw
        self._size = chunk
        self._chunk = b""
        self._off = 0  # position in _chunk
        self._pos = 0  # position in the stream

    def _fill(self) -> bool:
        self._chunk = self._raw.read(self._size)
        self._off = 0
        return bool(self._chunk)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def views(self, n: int) -> "Iterator[memoryview]":
        """Up to ``n`` next bytes as views of the chunks they arrive in (short only at the end of the stream)."""
        while n > 0:
            if self._off >= len(self._chunk) and not self._fill():
                return
            take = min(n, len(self._chunk) - self._off)
            view = memoryview(self._chunk)[self._off:self._off + take]
            self._off += take
            self._pos += take
            n -= take
            yield view

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = [bytes(v) for v in self.views(len(self._chunk) - self._off)]
            while self._fill():
                parts.append(self._chunk)
                self._pos += len(self._chunk)
                self._off = len(self._chunk)
            return b"".join(parts)
        if self._off + n <= len(self._chunk):  # the common case: no copy beyond the slice
            data = self._chunk[self._off:self._off + n]
            self._off += n
            self._pos += n
            return data
        return b"".join(self.views(n))

    def readinto(self, b: "memoryview | bytearray") -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a stream")
        back = self._pos - offset
        if back > 0:
            if back > self._off:
                raise io.UnsupportedOperation("seek back on a forward-only stream")
            self._off -= back
            self._pos = offset
        else:
            for _ in self.views(-back):
                pass
        return self._pos


def clean_name(name: str) -> list[str]:
    """The entry's path as components below the root.

    A leading ``/`` is stripped (tars made with absolute names are common and
    harmless once rooted); ``..`` that would climb above the root is refused.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise UnsafeArchive(f"invalid path {name!r}: escapes the target")
            parts.pop()
            continue
        parts.append(comp)
    return parts


class _Root:
    """Path resolution confined to one directory tree, openat-style."""

    def __init__(self, dest: str | int) -> None:
        # a descriptor is taken as the caller pinned it (a container's directory): never reopened by name
        if isinstance(dest, int):
            self.fd = os.dup(dest)
        else:
            self.fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def resolve_dir(self, parts: list[str], create: bool = True) -> tuple[int, list[str]]:
        """Open the directory ``parts`` names, following symlinks only within the root.

        Returns an fd (caller closes) and the real components of the directory.
        Missing directories are created (mode 0755) when ``create``.
        """
        stack: list[tuple[int, str]] = []  # (fd, component) below the root
        todo = list(parts)
        hops = 0
        cur = os.dup(self.fd)
        try:
            while todo:
                comp = todo.pop(0)
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if stack:
                        os.close(cur)
                        cur, _ = stack.pop()
                    continue
                try:
                    nxt = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
                except OSError as e:
                    if e.errno == errno.ENOENT and create:
                        os.mkdir(comp, 0o755, dir_fd=cur)
                        nxt = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                      dir_fd=cur)
                    elif e.errno in (errno.ELOOP, errno.ENOTDIR):
                        st = os.lstat(comp, dir_fd=cur)
                        if not stat.S_ISLNK(st.st_mode):
                            raise UnsafeArchive(f"{'/'.join(parts)}: {comp} is not a directory") from None
                        hops += 1
                        if hops > MAX_SYMLINK_HOPS:
                            raise UnsafeArchive(f"{'/'.join(parts)}: too many levels of symbolic links") from None
                        target = os.readlink(comp, dir_fd=cur)
                        if target.startswith("/"):
                            while stack:
                                os.close(cur)
                                cur, _ = stack.pop()
                        todo[:0] = target.split("/")
                        continue
                    else:
                        raise
                stack.append((cur, comp))
                cur = nxt
            real = [c for _, c in stack]
            for fd, _ in stack:
                os.close(fd)
            stack = []
            return cur, real
        except BaseException:
            for fd, _ in stack:
                os.close(fd)
            os.close(cur)
            raise

    def resolve_entry(self, parts: list[str]) -> tuple[int, str, list[str]]:
        """(parent dir fd, last component, real path components of the entry)."""
        if not parts:
            raise UnsafeArchive("empty path")
        dfd, real = self.resolve_dir(parts[:-1])
        return dfd, parts[-1], real + [parts[-1]]


def _remove_at(dfd: int, name: str) -> None:
    """Remove ``name`` (any type, recursively) inside the directory ``dfd``."""
    try:
        st = os.lstat(name, dir_fd=dfd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            for child in os.listdir(sub):
                _remove_at(sub, child)
        finally:
            os.close(sub)
        os.rmdir(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)


def _proc(dfd: int, name: str) -> str:
    return f"/proc/self/fd/{dfd}/{name}"


def extract(fileobj: IO[bytes], dest: str | int, *, whiteouts: Whiteouts = None, devices: bool = True,
            same_owner: bool = True, on_payload: PayloadHook | None = None) -> ExtractResult:
    """Extract the uncompressed tar stream ``fileobj`` into ``dest`` (a path, or a directory descriptor
    that is never reopened by name) in one pass.

    ``on_payload(member, real_path)`` is told where each regular file's
    content went, before the content is read (the layer store records it to
    rebuild the exact tar later); sparse members are not announced.
    """
    result = ExtractResult()
    root = _Root(dest)
    stream = ForwardReader(fileobj)
    try:
        with tarfile.TarFile(fileobj=stream, mode="r") as tar:  # type: ignore[arg-type]
            for member in tar:
                tar.members.clear()  # tarfile keeps every header seen (MiBs for a big context); none is needed
                _extract_one(tar, stream, member, root, result, whiteouts, devices, same_owner, on_payload)
        # Directory mtimes last: creating their children changed them. Reached again by the confined
        # walk, not by the name: a directory swapped meanwhile for a link must not lead out.
        for rel, mtime_ns in reversed(result._dir_times):
            try:
                dfd, _ = root.resolve_dir(rel.split("/"), create=False)
            except (OSError, UnsafeArchive):
                continue
            try:
                os.utime(dfd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(dfd)
    except tarfile.TarError as e:
        raise UnsafeArchive(f"invalid tar archive: {e}") from None
    finally:
        root.close()
    return result


def _extract_one(tar: tarfile.TarFile, stream: ForwardReader, m: tarfile.TarInfo, root: _Root, result: ExtractResult,
                 whiteouts: Whiteouts, devices: bool, same_owner: bool,
                 on_payload: PayloadHook | None) -> None:
    parts = clean_name(m.name)
    if not parts:  # "./" or "/": the root itself
        return
    base = parts[-1]
    if whiteouts and base.startswith(WHITEOUT_PREFIX):
        _whiteout(root, parts, whiteouts)
        return
    dfd, name, real = root.resolve_entry(parts)
    rel = "/".join(real)
    try:
        existing = None
        try:
            existing = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        if existing is not None and not (m.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove_at(dfd, name)
        mode = m.mode & 0o7777
        if m.isreg():
            # a sparse member's bytes in the tar are not the file's: they stay in the caller's raw record
            if on_payload is not None and m.sparse is None:
                on_payload(m, rel)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dfd)
            try:
                _copy_content(tar, stream, m, fd)
                _metadata_fd(fd, m, mode, same_owner)
            finally:
                os.close(fd)
            result.size += m.size
            os.utime(name, ns=(_ns(m.mtime), _ns(m.mtime)), dir_fd=dfd, follow_symlinks=False)
        elif m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(name, 0o700, dir_fd=dfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                _metadata_fd(fd, m, mode, same_owner)
            finally:
                os.close(fd)
            result._dir_times.append((rel, _ns(m.mtime)))
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=dfd)
            _lmetadata(dfd, name, m, same_owner)
        elif m.islnk():
            target_parts = clean_name(m.linkname)
            tdfd, tname, _ = root.resolve_entry(target_parts)
            try:
                os.link(tname, name, src_dir_fd=tdfd, dst_dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                raise UnsafeArchive(f"{m.name}: hard link target {m.linkname} does not exist") from None
            finally:
                os.close(tdfd)
        elif m.ischr() or m.isblk() or m.isfifo():
            if not m.isfifo() and not devices:
                raise UnsafeArchive(f"{m.name}: device nodes are not allowed here")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(name, kind | mode, os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0, dir_fd=dfd)
            _lmetadata(dfd, name, m, same_owner, chmod=mode)
        else:  # GNU sparse/volume headers and the like carry nothing a rootfs needs
            return
        result.entries += 1
    finally:
        os.close(dfd)


def _copy_content(tar: tarfile.TarFile, stream: ForwardReader, m: tarfile.TarInfo, fd: int) -> None:
    remaining = m.size
    if m.sparse is not None:  # tarfile maps the holes
        src = tar.extractfile(m)
        assert src is not None
        chunks: Iterator[bytes | memoryview] = iter(lambda: src.read(min(COPY_CHUNK, remaining)), b"")
    else:  # the content follows its header: write it from the stream's chunks
        stream.seek(m.offset_data)
        chunks = stream.views(m.size)
    for chunk in chunks:
        if len(chunk) and chunk[0] == 0 and chunk[-1] == 0 and bytes(chunk) == _ZEROS[:len(chunk)]:
            os.lseek(fd, len(chunk), os.SEEK_CUR)  # a run of zeros stays a hole: sparse files stay sparse
        else:
            _write_all(fd, chunk)
        remaining -= len(chunk)
        if remaining <= 0:
            break
    if remaining > 0:
        raise UnsafeArchive(f"{m.name}: unexpected end of archive")
    os.ftruncate(fd, m.size)  # a file ending in a hole gets its length


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)


def _xattrs(m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in m.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            out.append((key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape")))
    return out


def _metadata_fd(fd: int, m: tarfile.TarInfo, mode: int, same_owner: bool) -> None:
    if same_owner:
        os.fchown(fd, m.uid, m.gid)
    # chmod after chown: chown clears setuid/setgid bits.
    os.fchmod(fd, mode)
    for key, value in _xattrs(m):
        try:
            os.setxattr(fd, key, value)
        except OSError:
            pass  # a filesystem without that namespace; dockerd ignores it likewise


def _lmetadata(dfd: int, name: str, m: tarfile.TarInfo, same_owner: bool, chmod: int | None = None) -> None:
    if same_owner:
        os.chown(name, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)
    if chmod is not None:
        # fchmodat follows a final symlink (Linux has no lchmod): change the node just made through a
        # descriptor of it, so one swapped in meanwhile for a link is left alone
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            if not stat.S_ISLNK(os.fstat(node).st_mode):
                os.chmod(f"/proc/self/fd/{node}", chmod)
        finally:
            os.close(node)
    for key, value in _xattrs(m):
        try:
            os.setxattr(_proc(dfd, name), key, value, follow_symlinks=False)
        except OSError:
            pass
    os.utime(name, ns=(_ns(m.mtime), _ns(m.mtime)), dir_fd=dfd, follow_symlinks=False)


def _whiteout(root: _Root, parts: list[str], mode: Whiteouts) -> None:
    base = parts[-1]
    dfd, _ = root.resolve_dir(parts[:-1])
    try:
        if base == WHITEOUT_OPAQUE:
            if mode == "overlay":
                os.setxattr(_proc(dfd, "."), OPAQUE_XATTR, b"y")
            else:
                for child in os.listdir(dfd):
                    _remove_at(dfd, child)
            return
        victim = base[len(WHITEOUT_PREFIX):]
        if not victim or "/" in victim or victim in (".", ".."):
            raise UnsafeArchive(f"invalid whiteout {'/'.join(parts)}")
        _remove_at(dfd, victim)
        if mode == "overlay":
            os.mknod(victim, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
    finally:
        os.close(dfd)
