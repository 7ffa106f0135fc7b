"""Paths inside a root directory, resolved as a process chrooted there would see them."""

from __future__ import annotations

import os

from .. import errors


def resolve_in_root(root: str, path: str, follow_last: bool = True, *, max_links: int = 255,
                    loop_message: str = "too many levels of symbolic links: {path}") -> str:
    """``path`` mapped to the host under ``root`` without ever leaving it.

    Symlinks are followed component by component by this code, never by the
    kernel: an absolute target restarts at ``root``, ``..`` stops at it. The
    last component is followed only with ``follow_last``. More than
    ``max_links`` links is an InvalidParameter with ``loop_message``.
    """
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, comp)
        if (todo or follow_last) and os.path.islink(host):
            links += 1
            if links > max_links:
                raise errors.InvalidParameter(loop_message.format(path=path))
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(comp)
    return os.path.join(root, *done)
