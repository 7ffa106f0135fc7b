"""A file the engine bind-mounts into containers (hosts, resolv.conf), rewritten in place.

A bind mount holds the inode, not the name: a file replaced by rename would leave every container
that already has it mounted on the old content. A container in another's network namespace mounts
that container's files, so they are rewritten as libnetwork does, truncated and written in the same
inode, which every mount sees.
"""

from __future__ import annotations

import os


def rewrite(path: str, text: str) -> None:
    # O_NOFOLLOW: the path is the engine's own; it is never followed elsewhere
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
