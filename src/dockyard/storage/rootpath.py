"""Paths inside a root directory, resolved as a process chrooted there would see them.

The lookups go through ``rootfd`` (openat2 ``RESOLVE_IN_ROOT`` below a descriptor
of the root), so no symlink, ``..`` or concurrent rename can take them out of
the root. Code that reads or writes a root some process may change (a running
container's) uses the descriptors of ``rootfd`` directly; the names computed
here serve roots nobody changes (image and stage roots, build contexts) and
for showing where a link leads.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import errors
from . import rootfd


def resolve_parts(root: int, path: str, follow_last: bool = True, *, max_links: int = 255,
                  loop_message: str = "too many levels of symbolic links: {path}") -> list[str]:
    """The names, below the root descriptor ``root``, that ``path`` leads to.

    Symlinks are followed as the kernel would inside the root (absolute targets
    restart at it, ``..`` stops at it), the last one only with ``follow_last``;
    a missing component ends the lookup with the rest taken as written. More
    than ``max_links`` links is an InvalidParameter with ``loop_message``.
    """
    todo = rootfd.components(path)
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        if todo or follow_last:
            target = _link_target(root, done + [comp])
            if target is not None:
                links += 1
                if links > max_links:
                    raise errors.InvalidParameter(loop_message.format(path=path))
                if target.startswith("/"):
                    done = []
                todo = rootfd.components(target) + todo
                continue
        done.append(comp)
    return done


def _link_target(root: int, parts: list[str]) -> str | None:
    try:
        fd = rootfd.open_in(root, "/".join(parts), follow_last=False)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    try:
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            return None
        return os.readlink("", dir_fd=fd)
    finally:
        os.close(fd)


def resolve_in_root(root: str, path: str, follow_last: bool = True, *, max_links: int = 255,
                    loop_message: str = "too many levels of symbolic links: {path}") -> str:
    """``path`` mapped to the host under ``root`` without ever leaving it, for roots nobody changes.

    Every component of the answer but (without ``follow_last``) the last was a
    real directory when looked at, so the host resolves the string as the root would.
    """
    fd = rootfd.open_root(root)
    try:
        parts = resolve_parts(fd, path, follow_last, max_links=max_links, loop_message=loop_message)
    finally:
        os.close(fd)
    return os.path.join(root, *parts)
