"""The vfs snapshotter: every layer and snapshot is a full copy of its parent plus its changes.

Slow and big, but it needs no kernel support, so it is the fallback where
overlay cannot mount (e.g. a data root on overlayfs). Whiteouts are applied
(deleting from the copy) rather than stored.
"""

from __future__ import annotations

import os
import stat
import subprocess
from typing import Iterator

from .. import errors
from . import rootfd
from .difftar import tree_tar
from .snapshotter import Mounts, Snapshotter


def copy_tree(src: str, dst: str) -> None:
    """Copy ``src`` (contents, owners, modes, times, xattrs, hard links) to the new dir ``dst``."""
    res = subprocess.run(["cp", "-a", "--reflink=auto", src, dst], capture_output=True, text=True)
    if res.returncode != 0:
        raise errors.SystemError_(f"copying layer failed: {res.stderr.strip()}")


class VfsSnapshotter(Snapshotter):
    name = "vfs"
    whiteouts = "apply"
    independent_layers = False

    def _populate(self, diff: str, parent: str | None) -> None:
        if parent:
            copy_tree(self.layer_path(parent), diff)
        else:
            os.mkdir(diff, 0o755)

    def mounts(self, key: str) -> Mounts:
        return Mounts("bind", upperdir=self.snapshot(key).upperdir)

    def mount(self, key: str, target: str) -> None:
        res = subprocess.run(["mount", "--bind", self.snapshot(key).upperdir, target], capture_output=True,
                             text=True)
        if res.returncode != 0:
            raise errors.SystemError_(f"mount failed: {res.stderr.strip()}")

    def diff(self, key: str) -> Iterator[bytes]:
        snap = self.snapshot(key)
        base = self.layer_path(snap.parent) if snap.parent else None
        changed, deleted = _changes(base, snap.upperdir)
        return tree_tar(snap.upperdir, changed, deleted)


def _changes(base: str | None, top: str) -> tuple[list[str], list[str]]:
    """Paths added or modified in ``top`` relative to ``base`` (parents first), and deleted ones."""
    changed: list[str] = []
    deleted: list[str] = []

    def same(a: os.stat_result, b: os.stat_result) -> bool:
        return (a.st_mode == b.st_mode and a.st_uid == b.st_uid and a.st_gid == b.st_gid
                and a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns and a.st_rdev == b.st_rdev)

    def lstat_or_none(path: str) -> os.stat_result | None:
        try:
            return os.lstat(path)
        except FileNotFoundError:
            return None

    # the container changes ``top`` while it is read: looked at through descriptors only (rootfd)
    top_fd = rootfd.open_root(top)

    def listdir_top(rel: str) -> list[str]:
        fd = rootfd.open_in(top_fd, rel, rootfd.DIR_FLAGS, follow_last=False)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def lstat_top(rel: str) -> os.stat_result:
        parent, name = rootfd.open_parent(top_fd, rel)
        try:
            return os.lstat(name, dir_fd=parent)
        finally:
            os.close(parent)

    def walk(rel: str, base_has: bool) -> None:
        names = sorted(listdir_top(rel))
        if base_has and base:
            for gone in sorted(set(os.listdir(os.path.join(base, rel))) - set(names)):
                deleted.append(os.path.join(rel, gone))
        for name in names:
            r = os.path.join(rel, name)
            st = lstat_top(r)
            old = lstat_or_none(os.path.join(base, r)) if base and base_has else None
            if stat.S_ISDIR(st.st_mode):
                old_dir = old is not None and stat.S_ISDIR(old.st_mode)
                mark = len(changed)
                changed.append(r)
                walk(r, old_dir)
                if old_dir and same(st, old) and len(changed) == mark + 1:  # type: ignore[arg-type]
                    changed.pop()
            elif old is None or not same(st, old):
                changed.append(r)

    try:
        walk("", True)
    finally:
        os.close(top_fd)
    return changed, deleted
