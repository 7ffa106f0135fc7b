"""docker cp and export: a container's files read and written from the host, inside its root only.

Every path the client names is resolved component by component against the
container's root, following the container's symlinks as the container would
see them (absolute targets restart at the container's root, ``..`` stops at
it), so no symlink can lead a copy to the host's files. Writes go through
``storage.archive.extract``, which opens every directory relative to the
resolved target without following links. A running container is read and
written through ``/proc/PID/root``, so its bind mounts and volumes are seen as
inside it; a stopped container's root is mounted for the copy and unmounted
after, as dockerd does.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import os
import stat
import tarfile
import threading
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator

from .. import errors
from ..runtime import spec as specmod
from ..storage import archive as tarsafe
from ..storage.rootpath import resolve_in_root as _resolve
from ..storage.snapshotter import is_mountpoint

CHUNK = 1024 * 1024

# Go's os.FileMode type bits, which the docker CLI reads from the path stat
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


@dataclass
class PathStat:
    name: str
    size: int
    mode: int  # Go's FileMode
    mtime: str
    link_target: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}


class ContainerFiles:
    def __init__(self, containers: Any) -> None:
        self.containers = containers
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}  # copies holding the mount of a stopped container

    @contextlib.contextmanager
    def root(self, ref: str) -> Iterator[tuple[Any, str]]:
        """The container and its merged root, mounted for as long as the block runs."""
        c = self.containers.get(ref)
        rootfs = self.containers.rootfs(c.id)
        with self._lock:
            if self._users.get(c.id, 0) == 0 and not is_mountpoint(rootfs):
                self.containers.snapshotter.mount(c.id, rootfs)
                self._users[c.id] = 1
            elif c.id in self._users:
                self._users[c.id] += 1
        try:
            yield c, rootfs
        finally:
            with self._lock:
                if c.id in self._users:
                    self._users[c.id] -= 1
                    if self._users[c.id] == 0:
                        del self._users[c.id]
                        if not c.state.running:
                            self.containers.snapshotter.unmount(rootfs)

    @contextlib.contextmanager
    def view(self, ref: str) -> Iterator[tuple[Any, str]]:
        """The container and the root its processes see: a running container's mount namespace (its bind
        mounts and volumes included, as dockerd's cp sees them), else the merged root mounted for the block."""
        with self.root(ref) as (c, rootfs):
            # "/." so that the root itself is the directory, not the magic link lstat would see
            live = f"/proc/{c.state.pid}/root/."
            if c.state.running and c.state.pid and os.path.isdir(live):
                yield c, live
            else:
                yield c, rootfs

    # -- stat, read, write -----------------------------------------------------------
    def stat(self, ref: str, path: str) -> PathStat:
        with self.view(ref) as (c, root):
            host = _resolve_request(root, path, ref)
            return _stat(root, host, path)

    def read(self, ref: str, path: str) -> tuple[PathStat, Iterator[bytes]]:
        """The path's stat (now, so a missing path is a 404 before any byte) and its tar stream."""
        ctx = self.view(ref)
        c, root = ctx.__enter__()
        try:
            host = _resolve_request(root, path, ref)
            st = _stat(root, host, path)
        except BaseException as e:
            ctx.__exit__(type(e), e, e.__traceback__)
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from tar_tree(host, _rebase_name(path))
            finally:
                ctx.__exit__(None, None, None)

        return st, chunks()

    def write(self, ref: str, path: str, body: IO[bytes], copy_uid_gid: bool = False,
              no_overwrite_dir_non_dir: bool = False) -> None:
        with self.view(ref) as (c, root):
            if c.host_config.get("ReadonlyRootfs"):
                raise errors.Forbidden("container rootfs is marked read-only")
            host = resolve_in_root(root, path, follow_last=True)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                raise errors.NotFound(f"Could not find the file {path} in container {ref}") from None
            if not stat.S_ISDIR(st.st_mode):
                raise errors.InvalidParameter("extraction point is not a directory")
            owner = (0, 0)
            if copy_uid_gid and c.config.get("User"):
                # the image's /etc/passwd, in the merged root (the live view's path does not survive realpath)
                user = specmod.resolve_user(self.containers.rootfs(c.id), c.config["User"])
                owner = (user.uid, user.gid)
            try:
                if owner == (0, 0) and os.geteuid() == 0:
                    # the daemon's own files are root's: the stream passes unchanged, only checked
                    guard = host if no_overwrite_dir_non_dir else None
                    tarsafe.extract(GuardedTar(body, guard), host, devices=False, same_owner=False)
                else:
                    reader = TarFilter(body, _owned(owner, host if no_overwrite_dir_non_dir else None))
                    tarsafe.extract(reader, host, devices=False, same_owner=True)
            except tarsafe.UnsafeArchive as e:
                raise errors.InvalidParameter(str(e)) from None

    def export(self, ref: str) -> Iterator[bytes]:
        """The merged root as one tar, as ``docker export`` writes it."""
        ctx = self.root(ref)
        _, root = ctx.__enter__()

        def chunks() -> Iterator[bytes]:
            try:
                yield from tar_tree(root, "", skip_root=True)
            finally:
                ctx.__exit__(None, None, None)

        return chunks()


class TarFilter:
    """A tar stream re-emitted entry by entry through ``transform`` (None drops the entry).

    Lets a blocking consumer (extraction, the layer store) read a rewritten
    stream without spooling it.
    """

    def __init__(self, body: IO[bytes], transform: Callable[[tarfile.TarInfo], tarfile.TarInfo | None]) -> None:
        try:
            self._tar = tarfile.open(fileobj=body, mode="r|", bufsize=CHUNK)
        except tarfile.TarError as e:
            raise tarsafe.UnsafeArchive(f"invalid tar archive: {e}") from None
        self._transform = transform
        self._file: IO[bytes] | None = None
        self._out = bytearray()
        self._members = iter(self._tar)
        self._current: tarfile.TarInfo | None = None
        self._remaining = 0
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._out) < n):
            self._fill()
        if n < 0 or n >= len(self._out):
            data = bytes(self._out)
            self._out.clear()
        else:
            data = bytes(self._out[:n])
            del self._out[:n]
        return data

    def _fill(self) -> None:
        if self._current is not None and self._remaining > 0:
            if self._file is None:
                self._file = self._tar.extractfile(self._current)
            assert self._file is not None
            data = self._file.read(min(CHUNK, self._remaining))
            if not data:
                raise tarsafe.UnsafeArchive("invalid tar archive: unexpected end of data")
            self._remaining -= len(data)
            self._out += data
            if self._remaining == 0:
                self._out += b"\0" * (-self._current.size % tarfile.BLOCKSIZE)
            return
        try:
            m = next(self._members)
        except StopIteration:
            self._out += b"\0" * (tarfile.BLOCKSIZE * 2)
            self._done = True
            return
        except tarfile.TarError as e:
            raise tarsafe.UnsafeArchive(f"invalid tar archive: {e}") from None
        self._file = None
        out = self._transform(m)
        if out is None:
            self._current, self._remaining = None, 0
            return
        self._out += out.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._current = out
        self._remaining = out.size if out.isreg() else 0


class GuardedTar:
    """A tar stream passed through byte for byte, each entry's headers held back until it is checked.

    The cheap path of an upload (no ownership to rewrite): headers are read
    here (ustar, pax and GNU long names), contents are only counted, and the
    body's chunks go out as they came (sliced only where a header still
    waits), so the extractor parses each header once and no data is copied.
    """

    def __init__(self, body: IO[bytes], guard_dir: str | None) -> None:
        self._body = body
        self._guard_dir = guard_dir
        self._chunks: collections.deque[bytes] = collections.deque()  # read from the body, not yet given out
        self._off = 0  # given out of _chunks[0]
        self._avail = 0  # bytes in _chunks not yet given out
        self._released = 0  # how many of those may go out
        self._data_left = 0  # content (and padding) of the current entry still to come
        self._pending: list[bytes] = []  # pax / long-name blocks of the entry being read
        self._global: dict[str, str] = {}  # pax global records: tarfile applies them to every later entry
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        if want == 0:
            return b""
        while self._released == 0 and not self._eof:
            self._advance()
        if self._eof:
            self._released = self._avail
        if not self._chunks:
            return b""
        first = self._chunks[0]
        k = min(want, self._released, len(first) - self._off)
        if self._off == 0 and k == len(first):
            self._chunks.popleft()
            data = first
        else:
            data = first[self._off:self._off + k]
            self._off += k
            if self._off == len(first):
                self._chunks.popleft()
                self._off = 0
        self._avail -= k
        self._released -= k
        return data

    def _fill(self, size: int) -> bool:
        """At least ``size`` unreleased bytes buffered; False at the body's end."""
        while self._avail - self._released < size:
            chunk = self._body.read(max(CHUNK, size))
            if not chunk:
                return False
            self._chunks.append(bytes(chunk))
            self._avail += len(chunk)
        return True

    def _peek(self, pos: int, size: int) -> bytes:
        """``size`` buffered bytes from ``pos`` (counted from the first byte not yet given out)."""
        pos += self._off
        parts = []
        for chunk in self._chunks:
            if pos >= len(chunk):
                pos -= len(chunk)
                continue
            parts.append(chunk[pos:pos + size])
            size -= len(parts[-1])
            pos = 0
            if size <= 0:
                break
        return b"".join(parts)

    def _advance(self) -> None:
        if self._data_left:
            if not self._fill(1):
                raise tarsafe.UnsafeArchive("invalid tar archive: unexpected end of data")
            take = min(self._data_left, self._avail - self._released)
            self._released += take
            self._data_left -= take
            return
        held = sum(len(b) for b in self._pending)
        if not self._fill(held + tarfile.BLOCKSIZE):
            self._eof = True  # a truncated end: the extractor says what is wrong
            return
        start = self._released + held
        block = self._peek(start, tarfile.BLOCKSIZE)
        if block == bytes(tarfile.BLOCKSIZE):
            self._eof = True  # the end-of-archive blocks and whatever follows go out as they are
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as e:
            raise tarsafe.UnsafeArchive(f"invalid tar archive: {e}") from None
        padded = info.size + (-info.size % tarfile.BLOCKSIZE)
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            # an extended header: its payload belongs to the next entry, checked with it
            if not self._fill(held + tarfile.BLOCKSIZE + padded):
                raise tarsafe.UnsafeArchive("invalid tar archive: unexpected end of data")
            self._pending.append(self._peek(start, tarfile.BLOCKSIZE + padded))
            return
        ext_end = start + tarfile.BLOCKSIZE
        if info.type == tarfile.GNUTYPE_SPARSE and block[482]:
            # old GNU sparse: more extent blocks follow the header, each saying whether another does
            while True:
                if not self._fill(ext_end - self._released + tarfile.BLOCKSIZE):
                    raise tarsafe.UnsafeArchive("invalid tar archive: unexpected end of data")
                more = self._peek(ext_end + 504, 1)[0]
                ext_end += tarfile.BLOCKSIZE
                if not more:
                    break
        name, size = info.name, info.size
        records = dict(self._global)
        for ext in self._pending:
            kind = ext[156:157]
            payload = ext[tarfile.BLOCKSIZE:]
            if kind == tarfile.GNUTYPE_LONGNAME:
                name = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == tarfile.XGLTYPE:
                self._global.update(_pax_records(payload))
                records.update(self._global)
            elif kind == tarfile.XHDTYPE:
                records.update(_pax_records(payload))
        name = records.get("path", name)
        if "size" in records:
            size = int(records["size"])
        if self._guard_dir is not None:
            info.name = name
            _check_overwrite(self._guard_dir, info)
        self._released = ext_end
        self._pending = []
        self._data_left = size + (-size % tarfile.BLOCKSIZE) if info.type in tarfile.REGULAR_TYPES else 0


def _pax_records(payload: bytes) -> dict[str, str]:
    """The ``len key=value\\n`` records of a pax extended header."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(payload) and payload[pos:pos + 1] not in (b"", b"\0"):
        space = payload.index(b" ", pos)
        length = int(payload[pos:space])
        key, _, value = payload[space + 1:pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _owned(owner: tuple[int, int], guard_dir: str | None) -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    """Every entry owned by ``owner`` (dockerd's ChownOpts); with ``guard_dir``, noOverwriteDirNonDir."""

    def transform(m: tarfile.TarInfo) -> tarfile.TarInfo:
        if guard_dir is not None:
            _check_overwrite(guard_dir, m)
        m.uid, m.gid = owner
        m.uname = m.gname = ""
        return m

    return transform


def _check_overwrite(guard_dir: str, m: tarfile.TarInfo) -> None:
    parts = tarsafe.clean_name(m.name)
    if not parts:
        return
    try:
        st = os.lstat(os.path.join(guard_dir, *parts))
    except OSError:
        return
    name = "/".join(parts)
    if stat.S_ISDIR(st.st_mode) and not m.isdir():
        raise errors.InvalidParameter(f'cannot overwrite directory "{name}" with non-directory')
    if not stat.S_ISDIR(st.st_mode) and m.isdir():
        raise errors.InvalidParameter(f'cannot overwrite non-directory "{name}" with directory')


# -- paths ---------------------------------------------------------------------------
def resolve_in_root(root: str, path: str, follow_last: bool = True) -> str:
    """``path`` as the container sees it, mapped to the host under ``root`` without ever leaving it."""
    return _resolve(root, path, follow_last, loop_message="too many links in {path}")


def _follows_last(path: str) -> bool:
    # dockerd follows a final symlink only when the path asks for the directory ("dir/", "dir/.")
    return path.endswith("/") or path.endswith("/.")


def _resolve_request(root: str, path: str, ref: str) -> str:
    host = resolve_in_root(root, path, _follows_last(path))
    if not os.path.lexists(host):
        raise errors.NotFound(f"Could not find the file {path} in container {ref}")
    return host


def _rebase_name(path: str) -> str:
    if path.endswith("/."):
        return "."
    base = os.path.basename(os.path.normpath("/" + path))
    return base or "."


def _stat(root: str, host: str, path: str) -> PathStat:
    st = os.lstat(host)
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = "/" + os.path.relpath(resolve_in_root(root, os.path.relpath(host, root)), root)
        link = os.path.normpath(link)
    mtime = datetime.datetime.fromtimestamp(st.st_mtime_ns // 1_000_000_000, datetime.timezone.utc)
    nanos = st.st_mtime_ns % 1_000_000_000
    text = mtime.strftime("%Y-%m-%dT%H:%M:%S") + (f".{nanos:09d}".rstrip("0") if nanos else "") + "Z"
    return PathStat(name=_rebase_name(path) if path.strip("/") else "/", size=st.st_size,
                    mode=go_file_mode(st.st_mode), mtime=text, link_target=link)


def go_file_mode(mode: int) -> int:
    out = mode & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFIFO: GO_PIPE, stat.S_IFSOCK: GO_SOCKET,
            stat.S_IFBLK: GO_DEVICE, stat.S_IFCHR: GO_DEVICE | GO_CHARDEV}.get(kind, 0)
    if mode & stat.S_ISUID:
        out |= GO_SETUID
    if mode & stat.S_ISGID:
        out |= GO_SETGID
    if mode & stat.S_ISVTX:
        out |= GO_STICKY
    return out


# -- tar out ---------------------------------------------------------------------------
def tar_tree(top: str, name: str, skip_root: bool = False) -> Iterator[bytes]:
    """``top`` (not followed if a symlink) as a tar whose entries start with ``name``; chunks of ~1 MiB."""
    sink = _Sink()
    tar = tarfile.TarFile(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT)  # only for gettarinfo
    out = bytearray()

    def entry(path: str, arcname: str) -> Iterator[bytes]:
        nonlocal out
        try:
            ti = tar.gettarinfo(path, arcname)
        except OSError:
            return  # vanished under a running container
        if ti is None:
            return  # a socket: tar has no entry for it
        ti.uname = ti.gname = ""
        out += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if ti.isreg() and ti.size:
            with open(path, "rb") as f:
                left = ti.size
                while left > 0:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        data = b"\0" * left  # shrank while read: keep the header's size
                    out += data
                    left -= len(data)
                    if len(out) >= CHUNK:
                        yield bytes(out)
                        out = bytearray()
            out += b"\0" * (-ti.size % tarfile.BLOCKSIZE)
        if len(out) >= CHUNK:
            yield bytes(out)
            out = bytearray()

    def walk(path: str, arcname: str) -> Iterator[bytes]:
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return
        for n in names:
            child = os.path.join(path, n)
            child_arc = f"{arcname}/{n}" if arcname else n
            yield from entry(child, child_arc)
            if os.path.isdir(child) and not os.path.islink(child):
                yield from walk(child, child_arc)

    if not skip_root:
        yield from entry(top, name)
    if os.path.isdir(top) and not os.path.islink(top):
        yield from walk(top, name)
    out += b"\0" * (tarfile.BLOCKSIZE * 2)
    yield bytes(out)


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)

    def tell(self) -> int:
        return 0
