"""Disk usage of a directory tree, as moby's directory.Size counts it."""

from __future__ import annotations

import os


def tree_size(root: str) -> int:
    """Bytes of the files under ``root``, each hard-linked file once; unreadable entries are skipped."""
    total = 0
    seen: set[tuple[int, int]] = set()
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
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
