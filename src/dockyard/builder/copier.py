"""COPY and ADD: find the sources, checksum them for the cache, write them as one layer tar.

Paths are resolved inside a root (the context, or a mounted image) with
symlinks followed but never out of it; globs are matched against listings of
directories opened from the root's descriptor without crossing any symlink, as
dockerd's classic builder matches them, never on the host. The layer tar holds
the destination's parent directories (with the image's own metadata when they
exist) and then the copied tree, walked in sorted order, so equal inputs give
equal layers.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import hashlib
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from typing import Callable, Iterator

from .. import errors
from ..storage import rootfd, rootpath
from ..util.dockerignore import Matcher

CHUNK = 1024 * 1024
_ZEROS = bytes(CHUNK)
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_NO_LINKS = rootfd.RESOLVE_BENEATH | rootfd.RESOLVE_NO_SYMLINKS | rootfd.RESOLVE_NO_MAGICLINKS


class CopyError(errors.InvalidParameter):
    pass


@dataclass
class Source:
    path: str  # real path on the host
    name: str  # the name it was given (for messages and single-file destinations)
    is_dir: bool
    extract: bool = False  # ADD of a local archive
    parents: bool = False  # COPY --parents: kept at dest/<name>, its parent directories made


def find_sources(instr: str, root: str, patterns: list[str], from_context: bool, add: bool) -> list[Source]:
    root_fd = rootfd.open_root(root)
    try:
        return _find_sources(instr, root, root_fd, patterns, from_context, add)
    finally:
        os.close(root_fd)


def _find_sources(instr: str, root: str, root_fd: int, patterns: list[str], from_context: bool,
                  add: bool) -> list[Source]:
    out: list[Source] = []
    for pat in patterns:
        norm = posixpath.normpath(pat.lstrip("/") or ".")
        if from_context and (norm == ".." or norm.startswith("../")):
            raise CopyError(f"{instr} failed: forbidden path outside the build context: {pat} ()")
        if glob.has_magic(norm):
            names = [h for h in _glob(root_fd, norm) if not h.startswith("..")]
            if not names:
                raise CopyError(f"{instr} failed: no source files were specified")
        else:
            names = [norm]
        found = False
        for name in names:
            path = rootpath.resolve_in_root(root, name)
            if not os.path.lexists(path):
                continue
            found = True
            is_dir = os.path.isdir(path)
            out.append(Source(path, name, is_dir, extract=add and not is_dir and _is_archive(path)))
        if not found:
            where = "file not found in build context or excluded by .dockerignore: " if from_context else ""
            raise CopyError(f"{instr} failed: {where}stat {norm}: file does not exist")
    return out


def _glob(root_fd: int, pattern: str) -> list[str]:
    """Names below the root that ``pattern`` matches (as ``glob`` with hidden files), sorted.

    As dockerd's classic builder, which matches globs against a walk of the context that never
    enters a symlink: component by component, each directory is opened from the root's descriptor
    with openat2 ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``, so a context link such as ``evil -> /``
    matches nothing below it, and no host directory is ever listed or probed.
    """
    found = [""]
    for comp in pattern.split("/"):
        step: list[str] = []
        for prefix in found:
            if not glob.has_magic(comp):
                step.append(f"{prefix}/{comp}" if prefix else comp)
                continue
            try:
                fd = rootfd.openat2(root_fd, prefix or ".", rootfd.DIR_FLAGS, resolve=_NO_LINKS)
            except OSError:
                continue  # missing, not a directory, or reached through a link: nothing matches below it
            try:
                names = os.listdir(fd)
            finally:
                os.close(fd)
            step += [f"{prefix}/{n}" if prefix else n for n in fnmatch.filter(names, comp)]
        found = step
    return sorted(found)


def _is_archive(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if any(head.startswith(m) for m in _ARCHIVE_MAGIC):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def checksum(sources: list[Source]) -> str:
    """What the cache compares: names, modes, link targets and contents of every source file."""
    h = hashlib.sha256()
    for src in sources:
        for rel, path, st in _walk(src):
            h.update(f"{src.name}\0{rel}\0{st.st_mode:o}\0{st.st_size}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    for chunk in file_chunks(fd, st.st_size):
                        h.update(chunk)
                finally:
                    os.close(fd)
    return h.hexdigest()


def file_chunks(fd: int, size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of ``fd`` in chunks of at most CHUNK, holes given as zeros without reading
    them (SEEK_DATA/SEEK_HOLE, as Go's archive/tar finds them): a sparse file of gigabytes costs what its
    data costs, in bounded memory. A file that shrinks meanwhile reads as zeros to ``size``."""
    pos = 0
    while pos < size:
        try:
            data_at = min(os.lseek(fd, pos, os.SEEK_DATA), size)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: nothing but a hole from pos on
                raise
            data_at = size
        while pos < data_at:
            n = min(CHUNK, data_at - pos)
            yield _ZEROS if n == CHUNK else bytes(n)
            pos += n
        if pos >= size:
            return
        try:
            hole_at = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            hole_at = size
        while pos < hole_at:
            data = os.pread(fd, min(CHUNK, hole_at - pos), pos)
            if not data:
                break  # shrunk under us: the rest is read as a hole
            yield data
            pos += len(data)


def _walk(src: Source) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to the source, host path, lstat) for the source and all below it, sorted."""
    st = os.stat(src.path)
    yield "", src.path, st
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [("", src.path)]
    while stack:
        rel_dir, dir_path = stack.pop()
        entries = sorted(os.scandir(dir_path), key=lambda e: e.name)
        subdirs = []
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            est = e.stat(follow_symlinks=False)
            yield rel, e.path, est
            if stat.S_ISDIR(est.st_mode):
                subdirs.append((rel, e.path))
        stack.extend(reversed(subdirs))


@dataclass
class Options:
    uid: int | None = None  # --chown
    gid: int | None = None
    mode: Callable[[int, bool], int] | None = None  # --chmod: (mode, is a directory) -> mode
    exclude: Matcher | None = None  # --exclude, matched against paths below a directory source
    epoch: int | None = None  # SOURCE_DATE_EPOCH: clamp times
    keep_owner: bool = False  # COPY --from keeps the image's ownership


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(data if type(data) is bytes else bytes(data))
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return 0  # tarfile asks once, for where the archive starts

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def layer_tar(sources: list[Source], dest: str, dest_is_dir: bool, parents: list[tuple[str, os.stat_result | None]],
              opts: Options) -> Iterator[bytes]:
    """The layer for a COPY/ADD of ``sources`` to ``dest`` (absolute, in the image)."""
    sink = _Sink()
    # not the stream mode ("w|"): its buffer re-slices on every write; the bytes are the same
    tar = tarfile.TarFile(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT)  # type: ignore[arg-type]
    written: set[str] = set()

    def clamp(t: float) -> int:
        return int(min(t, opts.epoch) if opts.epoch is not None else t)

    for path, st in parents:
        ti = tarfile.TarInfo(path.strip("/"))
        ti.type = tarfile.DIRTYPE
        ti.mode = stat.S_IMODE(st.st_mode) if st else 0o755
        ti.uid, ti.gid = (st.st_uid, st.st_gid) if st else (0, 0)
        ti.mtime = clamp(st.st_mtime if st else (opts.epoch or 0))
        tar.addfile(ti)
        written.add(ti.name)

    def add(arc: str, path: str, st: os.stat_result) -> Iterator[bytes]:
        ti = tarfile.TarInfo(arc)
        ti.mtime = clamp(st.st_mtime)
        ti.mode = stat.S_IMODE(st.st_mode)
        if opts.uid is not None:
            ti.uid, ti.gid = opts.uid, opts.gid if opts.gid is not None else opts.uid
        elif opts.keep_owner:
            ti.uid, ti.gid = st.st_uid, st.st_gid
        if stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
            if opts.mode is not None:
                ti.mode = opts.mode(ti.mode, True)
            tar.addfile(ti)
        elif stat.S_ISLNK(st.st_mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
            ti.mode = 0o777
            tar.addfile(ti)
        elif stat.S_ISREG(st.st_mode):
            ti.size = st.st_size
            if opts.mode is not None:
                ti.mode = opts.mode(ti.mode, False)
            yield from _add_regular(tar, sink, ti, path)
        else:
            return  # devices, fifos and sockets are not copied from a context
        written.add(arc)

    base = dest.strip("/")
    for src in sources:
        if src.extract:
            yield from _extract_archive(tar, sink, src.path, base, opts, written)
            continue
        if src.parents:
            target = f"{base}/{src.name}" if base else src.name
            mtime = os.stat(src.path).st_mtime
            for parent in _ancestors(src.name):
                arc = f"{base}/{parent}" if base else parent
                if arc not in written:
                    yield from add(arc, "", os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, 0, 0, 0, mtime, mtime,
                                                            mtime)))
        elif src.is_dir:
            target = base
        elif dest_is_dir:
            target = f"{base}/{posixpath.basename(src.name)}" if base else posixpath.basename(src.name)
        else:
            target = base
        for rel, path, st in _walk(src):
            if rel and opts.exclude is not None and opts.exclude.excluded(rel):
                continue
            arc = f"{target}/{rel}" if rel else target
            if not arc:
                continue  # the root itself
            if rel == "" and src.is_dir and arc in written:
                continue
            if rel == "" and src.is_dir:
                # the destination directory keeps default ownership, as dockerd creates it
                st = os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, st.st_uid, st.st_gid, 0,
                                     st.st_atime, st.st_mtime, st.st_ctime))
            yield from add(arc, path, st)
            if sink.size >= CHUNK:
                yield sink.take()
    tar.close()
    yield sink.take()


def _ancestors(name: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b`` (the directories ``--parents`` recreates above a source)."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def _add_regular(tar: tarfile.TarFile, sink: _Sink, ti: tarfile.TarInfo, path: str) -> Iterator[bytes]:
    """What ``tar.addfile(ti, open(path))`` writes, handed on by CHUNK as it is read (never a whole file in
    memory) without tarfile's 16 KiB copies."""
    header = ti.tobuf(tar.format, tar.encoding, tar.errors)
    sink.write(header)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for data in file_chunks(fd, ti.size):
            sink.write(data)
            if sink.size >= CHUNK:
                yield sink.take()
    finally:
        os.close(fd)
    pad = -ti.size % tarfile.BLOCKSIZE
    if pad:
        sink.write(b"\0" * pad)
    tar.offset += len(header) + ti.size + pad  # tar.close() pads the stream from this offset


def _extract_archive(tar: tarfile.TarFile, sink: _Sink, path: str, base: str, opts: Options,
                     written: set[str]) -> Iterator[bytes]:
    """ADD of a local tar: its entries, re-rooted at ``base`` (the extractor checks them later)."""
    try:
        with tarfile.open(path, mode="r:*") as arch:
            for m in arch:
                name = posixpath.normpath(m.name.lstrip("/"))
                if name in (".", "") or name.startswith(".."):
                    continue
                m.name = f"{base}/{name}" if base else name
                if m.islnk():
                    link = posixpath.normpath(m.linkname.lstrip("/"))
                    m.linkname = f"{base}/{link}" if base else link
                if opts.uid is not None:
                    m.uid, m.gid = opts.uid, opts.gid if opts.gid is not None else opts.uid
                if opts.epoch is not None:
                    m.mtime = min(m.mtime, opts.epoch)
                m.pax_headers = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
                if m.isreg():
                    tar.addfile(m, arch.extractfile(m))
                else:
                    tar.addfile(m)
                written.add(m.name)
                if sink.size >= CHUNK:
                    yield sink.take()
    except tarfile.TarError as e:
        raise CopyError(f"ADD failed: {posixpath.basename(path)}: {e}") from None
