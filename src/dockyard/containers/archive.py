"""docker cp and export: a container's files read and written from the host, inside its root only.

The container's root is pinned by a descriptor (``/proc/PID/root`` of a running
container, so its bind mounts and volumes are seen as inside it; else its merged
root, mounted for the copy and unmounted after, as dockerd does, with its volumes and
binds mounted on it in a mount namespace of the copy's own: ``mountview``). Every path the
client names is opened below that descriptor with openat2 ``RESOLVE_IN_ROOT``
(``storage.rootfd``): the kernel follows the container's symlinks as the
container would see them, in the same walk that opens, so no symlink swapped in
at any moment can lead a copy to the host's files. Reads are tar streams made
from descriptors only (``storage.fdtar``); writes go through
``util.archive.extract`` working below the destination's descriptor.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import secrets
import stat
import tarfile
import threading
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator

from .. import errors
from ..runtime import spec as specmod
from ..storage import fdtar, rootfd
from ..storage.rootpath import resolve_parts
from ..storage.snapshotter import is_mountpoint
from ..util import timefmt
from ..util import archive as tarsafe
from . import mountview

CHUNK = 1024 * 1024

# Go's os.FileMode type bits, which the docker CLI reads from the path stat
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20
# what an *at call with O_NOFOLLOW answers when a name it was given is swapped meanwhile
_CHANGED_UNDER_US = (errno.ELOOP, errno.EEXIST, errno.ENOTDIR, errno.ENOENT, errno.EISDIR, errno.ENOTEMPTY)


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
    def view(self, ref: str) -> Iterator[tuple[Any, int]]:
        """The container and a descriptor of the root its processes see: a running container's, pinned
        through ``/proc/PID/root`` (its bind mounts and volumes included, as dockerd's cp sees them), else
        the merged root mounted for the block. Everything below is opened relative to it (``rootfd``)."""
        with self.root(ref) as (c, rootfs):
            fd = _live_root(c.state.pid, rootfs) if c.state.running and c.state.pid else None
            if fd is None and any(m["type"] in ("volume", "bind") for m in c.mounts):
                with self._held_binds(c) as binds, mountview.root_with_mounts(rootfs, binds) as fd:
                    yield c, fd
                return
            if fd is None:
                fd = rootfd.open_root(rootfs)
            try:
                yield c, fd
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _held_binds(self, c: Any) -> Iterator[list[mountview.Bind]]:
        """The volumes and binds of a container that does not run, its volumes held (mounted by their
        driver) under a holder of the copy's own, so that a start meanwhile keeps its own hold."""
        volumes = self.containers.volumes
        holder = f"{c.id}-cp-{secrets.token_hex(4)}"
        held: list[str] = []
        binds = []
        try:
            for m in c.mounts:
                if m["type"] == "bind":
                    source = m["source"]
                elif m["type"] == "volume":
                    source = volumes.mount(m["name"], holder, {"destination": m["destination"],
                                                               "read/write": str(m["rw"]).lower()})
                    held.append(m["name"])
                    if m.get("subpath"):
                        source = volumes.pin_subpath(m["name"], holder, m["subpath"])
                else:
                    continue  # tmpfs: nothing of it outlives the container, as dockerd copies none
                binds.append(mountview.Bind(source, m["destination"], bool(m["rw"]), not m.get("non_recursive")))
            yield binds
        finally:
            for name in held:
                volumes.unmount(name, holder)

    # -- stat, read, write -----------------------------------------------------------
    def stat(self, ref: str, path: str) -> PathStat:
        with self.view(ref) as (c, root):
            fd = _open_request(root, path, ref)
            try:
                return _stat(root, fd, path)
            finally:
                os.close(fd)

    def read(self, ref: str, path: str) -> tuple[PathStat, Iterator[bytes]]:
        """The path's stat (now, so a missing path is a 404 before any byte) and its tar stream."""
        ctx = self.view(ref)
        c, root = ctx.__enter__()
        try:
            fd = _open_request(root, path, ref)
        except BaseException as e:
            ctx.__exit__(type(e), e, e.__traceback__)
            raise
        try:
            st = _stat(root, fd, path)
        except BaseException as e:
            os.close(fd)
            ctx.__exit__(type(e), e, e.__traceback__)
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from fdtar.tree(fd, _rebase_name(path))
            finally:
                os.close(fd)
                ctx.__exit__(None, None, None)

        return st, chunks()

    def write(self, ref: str, path: str, body: IO[bytes], copy_uid_gid: bool = False,
              no_overwrite_dir_non_dir: bool = False) -> None:
        with self.view(ref) as (c, root):
            resolved = resolve_parts(root, path)
            _check_writable(c, resolved)
            dest = _open_destination(root, path, ref)
            try:
                owner = (0, 0)
                if copy_uid_gid and c.config.get("User"):
                    # the image's /etc/passwd, in the merged root (the live view's path does not survive realpath)
                    user = specmod.resolve_user(self.containers.rootfs(c.id), c.config["User"])
                    owner = (user.uid, user.gid)
                guard = dest if no_overwrite_dir_non_dir else None
                shown = "/" + "/".join(resolved)  # dockerd's messages name the resolved path
                try:
                    if not copy_uid_gid:
                        # as dockerd: the archive's own owners are kept; the stream passes unchanged, only checked
                        tarsafe.extract(GuardedTar(body, guard, shown), dest, devices=False, same_owner=True)
                    else:
                        reader = TarFilter(body, _owned(owner, guard, shown))
                        tarsafe.extract(reader, dest, devices=False, same_owner=True)
                except tarsafe.UnsafeArchive as e:
                    raise errors.InvalidParameter(str(e)) from None
                except OSError as e:
                    if e.errno == errno.EROFS:  # a read-only mount below the destination
                        raise errors.Forbidden("mounted volume is marked read-only") from None
                    if e.errno in _CHANGED_UNDER_US:
                        # the container replaced a path while it was written (a link where a file was
                        # made, a directory removed): nothing was followed, the copy stops
                        raise errors.Conflict(f"the container changed its files during the copy: {e}") from None
                    raise
            finally:
                os.close(dest)

    def export(self, ref: str) -> Iterator[bytes]:
        """The merged root as one tar, as ``docker export`` writes it."""
        ctx = self.root(ref)
        _, rootfs = ctx.__enter__()
        try:
            fd = rootfd.open_root(rootfs)
        except BaseException as e:
            ctx.__exit__(type(e), e, e.__traceback__)
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from fdtar.tree(fd, "", skip_root=True)
            finally:
                os.close(fd)
                ctx.__exit__(None, None, None)

        return chunks()


def _check_writable(c: Any, parts: list[str]) -> None:
    """As dockerd: a read-only mount refuses the copy, a writable one takes it even when the root is
    read-only (the path is the one the container's links lead to)."""
    inside = None
    for m in c.mounts:
        mount_parts = rootfd.components(m["destination"])
        if parts[:len(mount_parts)] == mount_parts and (inside is None or len(mount_parts) > len(
                rootfd.components(inside["destination"]))):
            inside = m
    if inside is not None and not inside.get("rw", True):
        raise errors.Forbidden("mounted volume is marked read-only")
    if inside is None and c.host_config.get("ReadonlyRootfs"):
        raise errors.Forbidden("container rootfs is marked read-only")


def _live_root(pid: int, rootfs: str) -> int | None:
    """The root of process ``pid`` if it is the container's (its ``/`` is the merged root), else None.

    The pid is the one last recorded: the container may have exited and the number gone to another
    process, whose root must never be taken for the container's.
    """
    try:
        fd = rootfd.open_root(f"/proc/{pid}/root")
    except OSError:
        return None  # it exited meanwhile: its merged root is the same files
    live, merged = os.fstat(fd), os.stat(rootfs)
    if (live.st_dev, live.st_ino) != (merged.st_dev, merged.st_ino):
        os.close(fd)
        return None
    return fd


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

    def __init__(self, body: IO[bytes], guard_dir: int | str | None, shown_as: str = "") -> None:
        self._body = body
        self._guard_dir = guard_dir
        self._shown_as = shown_as
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
            _check_overwrite(self._guard_dir, info, self._shown_as)
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


def _owned(owner: tuple[int, int], guard_dir: int | str | None,
           shown_as: str = "") -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    """Every entry owned by ``owner`` (dockerd's ChownOpts); with ``guard_dir``, noOverwriteDirNonDir."""

    def transform(m: tarfile.TarInfo) -> tarfile.TarInfo:
        if guard_dir is not None:
            _check_overwrite(guard_dir, m, shown_as)
        m.uid, m.gid = owner
        m.uname = m.gname = ""
        return m

    return transform


def _check_overwrite(guard_dir: int | str, m: tarfile.TarInfo, shown_as: str = "") -> None:
    """noOverwriteDirNonDir; ``shown_as``, the destination as the container names it, for dockerd's words."""
    parts = tarsafe.clean_name(m.name)
    if not parts:
        return
    if isinstance(guard_dir, str):
        fd = rootfd.open_root(guard_dir)
        try:
            return _check_overwrite(fd, m, shown_as)
        finally:
            os.close(fd)
    name = "/".join(parts)
    try:
        fd = rootfd.open_in(guard_dir, name, follow_last=False)
    except OSError:
        return
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if stat.S_ISDIR(st.st_mode) == m.isdir():
        return
    existing, incoming = ("directory", "non-directory") if stat.S_ISDIR(st.st_mode) else ("non-directory", "directory")
    if shown_as:
        raise errors.InvalidParameter(f'cannot overwrite {existing} "{os.path.join(shown_as, name)}" with '
                                      f'{incoming} "{shown_as}"')
    raise errors.InvalidParameter(f'cannot overwrite {existing} "{name}" with {incoming}')


# -- paths ---------------------------------------------------------------------------
def _follows_last(path: str) -> bool:
    # dockerd follows a final symlink only when the path asks for the directory ("dir/", "dir/.")
    return path.endswith("/") or path.endswith("/.")


def _open_request(root: int, path: str, ref: str) -> int:
    """An ``O_PATH`` descriptor of what ``path`` names in the container (a final link itself unless asked)."""
    try:
        return rootfd.open_in(root, path, follow_last=_follows_last(path))
    except OSError as e:
        raise _lookup_error(e, path, ref) from None


def _open_destination(root: int, path: str, ref: str) -> int:
    """The directory ``path`` names in the container, open for extraction below it."""
    try:
        return rootfd.open_in(root, path, rootfd.DIR_FLAGS)
    except OSError as e:
        if e.errno == errno.ENOTDIR and rootfd.lexists(root, path):
            raise errors.InvalidParameter("extraction point is not a directory") from None
        raise _lookup_error(e, path, ref) from None


def _lookup_error(e: OSError, path: str, ref: str) -> errors.DockyardError:
    if e.errno == errno.ELOOP:
        return errors.InvalidParameter(f"too many links in {path}")
    if e.errno == errno.ENAMETOOLONG:
        return errors.InvalidParameter(f"file name too long: {path}")
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return errors.NotFound(f"Could not find the file {path} in container {ref}")
    if e.errno == errno.EAGAIN:
        # openat2 gave up: the container kept renaming things under a ".." of the path
        return errors.Conflict(f"the container's files kept changing while {path} was looked up")
    return errors.SystemError_(f"{path}: {e.strerror}")


def _rebase_name(path: str) -> str:
    if path.endswith("/."):
        return "."
    base = os.path.basename(os.path.normpath("/" + path))
    return base or "."


def _stat(root: int, fd: int, path: str) -> PathStat:
    st = os.fstat(fd)
    link = ""
    if stat.S_ISLNK(st.st_mode):
        # where the link leads, as the container resolves it: for showing only, nothing is opened by it
        link = "/" + "/".join(resolve_parts(root, path, loop_message="too many links in {path}"))
    text = timefmt.rfc3339_nano(st.st_mtime_ns)
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
