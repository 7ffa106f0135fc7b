"""Disk usage of a directory tree: moby's directory.Size (apparent bytes) and containerd's DiskUsage
(blocks and inodes)."""

from __future__ import annotations

import os
from typing import Iterator


def _entries(root: str) -> Iterator[tuple[os.DirEntry[str], os.stat_result]]:
    """Every entry below ``root`` with its lstat, directories descended; unreadable entries skipped."""
    stack = [root]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                yield entry, st


def tree_size(root: str) -> int:
    """Bytes of the files under ``root``, each hard-linked file once (directories not counted)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for entry, st in _entries(root):
        if entry.is_dir(follow_symlinks=False):
            continue
        if st.st_nlink > 1:
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        total += st.st_size
    return total


def tree_usage(root: str) -> tuple[int, int]:
    """(bytes on disk, inodes) under ``root``, each inode once, as containerd's DiskUsage."""
    used = inodes = 0
    seen: set[tuple[int, int]] = set()
    for _, st in _entries(root):
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        used += st.st_blocks * 512
        inodes += 1
    return used, inodes
