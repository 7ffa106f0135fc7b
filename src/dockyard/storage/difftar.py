"""Writing a directory tree (or a changeset) as a layer tar stream, chunk by chunk.

The trees are a container's writable layer, which its processes change while
they are read (``docker diff``, ``commit --pause=false``): they are walked and
read through descriptors only (``fdtar``, ``rootfd``), so a directory swapped
for a symlink is never followed out of the layer.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Iterator

from ..util.archive import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from . import fdtar, rootfd


def _whiteout(tw: fdtar.TreeTar, arcname: str) -> Iterator[bytes]:
    ti = tarfile.TarInfo(arcname)
    ti.mode = 0o644
    tw.raw(ti)
    yield from tw.take()


def _opaque(dirfd: int, name: str) -> bool:
    try:
        return os.getxattr(f"/proc/self/fd/{dirfd}/{name}", OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def overlay_upper_tar(upper: str) -> Iterator[bytes]:
    """The overlay upper dir as a layer: whiteout devices and opaque dirs back to ``.wh.`` form."""
    tw = fdtar.TreeTar(xattrs=True)
    top = os.open(upper, rootfd.DIR_FLAGS)  # the daemon's own directory; only what is below it can change
    try:
        for rel, parent, entry in rootfd.walk(top):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone since it was listed
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                head, _, base = rel.rpartition("/")
                yield from _whiteout(tw, (head + "/" if head else "") + WHITEOUT_PREFIX + base)
                continue
            yield from tw.add(parent, entry.name, st, rel)
            if stat.S_ISDIR(st.st_mode) and _opaque(parent, entry.name):
                yield from _whiteout(tw, rel + "/" + WHITEOUT_OPAQUE)
    finally:
        os.close(top)
    yield from tw.end()


def tree_tar(root: str, changed: list[str], deleted: list[str]) -> Iterator[bytes]:
    """A layer from a full tree: ``changed`` paths (relative, parents first) and ``deleted`` ones."""
    tw = fdtar.TreeTar(xattrs=True)
    for rel in deleted:
        head, _, base = rel.rpartition("/")
        yield from _whiteout(tw, (head + "/" if head else "") + WHITEOUT_PREFIX + base)
    top = rootfd.open_root(root)
    try:
        for rel in changed:
            try:
                parent, name = rootfd.open_parent(top, rel)
            except OSError:
                continue  # removed since the change was seen
            try:
                st = os.lstat(name, dir_fd=parent)
                yield from tw.add(parent, name, st, rel)
            except FileNotFoundError:
                continue
            finally:
                os.close(parent)
    finally:
        os.close(top)
    yield from tw.end()
