"""COPY/ADD flags of the current Dockerfile syntax: ``--chmod`` (octal or symbolic), ``--chown`` by name,
``--exclude``.

``--chown`` names are looked up in the image's /etc/passwd and /etc/group,
opened below the image's root with openat2 ``RESOLVE_IN_ROOT`` (a symlinked
/etc/passwd resolves inside the image, never to the host's). A user named
without a group takes the user's primary group from /etc/passwd, as BuildKit
does (the classic builder took the gid equal to the uid).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Callable

from ..storage import rootfd
from ..util.dockerignore import Matcher

Chmod = Callable[[int, bool], int]  # (current mode, is a directory) -> new mode

_SYMBOLIC = re.compile(r"^([ugoa]*)([-+=])([rwxXst]*)$")
_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
_PERM = {"r": 0o444, "w": 0o222, "x": 0o111, "s": 0o6000, "t": 0o1000}
MAX_ACCOUNT_FILE = 4 << 20


class FlagError(ValueError):
    pass


def parse_chmod(spec: str) -> Chmod:
    """``--chmod=755`` (the same mode for every file and directory) or ``--chmod=u+x,go-w`` (applied to each
    file's own mode; ``X`` sets execute on directories and on files already executable by someone)."""
    if re.fullmatch(r"[0-7]{1,4}", spec):
        mode = int(spec, 8)
        return lambda _current, _is_dir: mode
    clauses = []
    for part in spec.split(","):
        m = _SYMBOLIC.match(part)
        if not m:
            raise FlagError(f"invalid chmod parameter: {spec}")
        clauses.append((m.group(1) or "a", m.group(2), m.group(3)))

    def apply(current: int, is_dir: bool) -> int:
        mode = stat.S_IMODE(current)
        for who, op, perms in clauses:
            mask = 0
            for w in ("ugo" if "a" in who else who):
                mask |= _WHO[w]
            bits = 0
            for p in perms:
                if p == "X":
                    if is_dir or mode & 0o111:
                        bits |= 0o111
                else:
                    bits |= _PERM[p]
            bits &= mask
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~mask) | bits
        return mode

    return apply


def lookup_chown(spec: str, image_root: str) -> tuple[int, int]:
    """``user[:group]`` (names or numbers) as uid and gid, names read from the image."""
    user, sep, group = spec.partition(":")
    if not user:
        raise FlagError(f"invalid chown parameter: {spec}")
    if user.isdigit():
        uid, primary = int(user), int(user)
    else:
        entry = _find(image_root, "/etc/passwd", user)
        if entry is None or len(entry) < 4 or not entry[2].isdigit() or not entry[3].isdigit():
            raise FlagError(f"unable to convert uid/gid chown string to host mapping: can't find uid for user "
                            f"{user}: no such user: {user}")
        uid, primary = int(entry[2]), int(entry[3])
    if not sep:
        return uid, primary
    if group.isdigit():
        return uid, int(group)
    entry = _find(image_root, "/etc/group", group)
    if entry is None or len(entry) < 3 or not entry[2].isdigit():
        raise FlagError(f"unable to convert uid/gid chown string to host mapping: can't find gid for group "
                        f"{group}: no such group: {group}")
    return uid, int(entry[2])


def _find(root: str, path: str, name: str) -> list[str] | None:
    """The line of ``path`` (below ``root``) whose first field is ``name``, split on ':'."""
    root_fd = rootfd.open_root(root)
    try:
        fd = rootfd.open_in(root_fd, path, os.O_RDONLY)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        text = f.read(MAX_ACCOUNT_FILE).decode("utf-8", "replace")
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    return None


def exclude_matcher(patterns: list[str]) -> Matcher | None:
    """``--exclude`` patterns (dockerignore syntax), matched against paths relative to the context or
    the ``--from`` image root."""
    return Matcher(patterns) if patterns else None
