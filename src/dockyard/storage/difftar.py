"""Writing a directory tree (or a changeset) as a layer tar stream, chunk by chunk."""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Iterator

from .archive import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

CHUNK = 1024 * 1024


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _info(tar: tarfile.TarFile, path: str, arcname: str) -> tarfile.TarInfo:
    ti = tar.gettarinfo(path, arcname)
    ti.uname = ti.gname = ""
    try:
        for key in os.listxattr(path, follow_symlinks=False):
            if key.startswith("trusted.overlay."):
                continue
            ti.pax_headers["SCHILY.xattr." + key] = os.getxattr(path, key, follow_symlinks=False).decode(
                "utf-8", "surrogateescape")
    except OSError:
        pass
    return ti


def _add(tar: tarfile.TarFile, sink: _Sink, path: str, arcname: str) -> Iterator[bytes]:
    ti = _info(tar, path, arcname)
    if ti.isreg():
        with open(path, "rb") as f:
            tar.addfile(ti, f)
    else:
        tar.addfile(ti)
    yield sink.take()


def _whiteout_entry(tar: tarfile.TarFile, sink: _Sink, arcname: str) -> Iterator[bytes]:
    ti = tarfile.TarInfo(arcname)
    ti.mode = 0o644
    tar.addfile(ti)
    yield sink.take()


def overlay_upper_tar(upper: str) -> Iterator[bytes]:
    """The overlay upper dir as a layer: whiteout devices and opaque dirs back to ``.wh.`` form."""
    sink = _Sink()
    tar = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, upper)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if prefix:
            yield from _add(tar, sink, dirpath, prefix.rstrip("/"))
            try:
                opaque = os.getxattr(dirpath, OPAQUE_XATTR, follow_symlinks=False) == b"y"
            except OSError:
                opaque = False
            if opaque:
                yield from _whiteout_entry(tar, sink, prefix + WHITEOUT_OPAQUE)
        names = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                yield from _whiteout_entry(tar, sink, prefix + WHITEOUT_PREFIX + name)
            else:
                yield from _add(tar, sink, path, prefix + name)
    tar.close()
    yield sink.take()


def tree_tar(root: str, changed: list[str], deleted: list[str]) -> Iterator[bytes]:
    """A layer from a full tree: ``changed`` paths (relative, parents first) and ``deleted`` ones."""
    sink = _Sink()
    tar = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
    for rel in deleted:
        head, _, base = rel.rpartition("/")
        yield from _whiteout_entry(tar, sink, (head + "/" if head else "") + WHITEOUT_PREFIX + base)
    for rel in changed:
        yield from _add(tar, sink, os.path.join(root, rel), rel)
    tar.close()
    yield sink.take()
