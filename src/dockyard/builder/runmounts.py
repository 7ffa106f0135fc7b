"""``RUN --mount=…``: the frontend's mount options parsed, checked before any step, and set up for one step.

Parsing happens when the build is planned, so a malformed or unknown mount is
the request's error (``dockerfile parse error line N: …``) and no step runs.
Setting up gives OCI mount entries for the step's spec plus what the step's
cache key must cover:

- ``bind``: the context (or ``from=`` a stage or image, mounted read-only) with
  ``source`` opened below that root with openat2 ``RESOLVE_IN_ROOT`` and
  mounted by the host path of what was opened (``resolve``), so no symlink
  in the source leads runc out of the root. Read-only unless ``rw``;
  with ``rw`` the step writes to a throwaway copy, as BuildKit discards them.
  The key covers the source's content checksum (or the ``from`` image ID).
- ``cache``: a daemon-owned directory (``cachemounts.py``), read-write.
- ``tmpfs``: a tmpfs of ``size`` bytes.
- ``secret`` and ``ssh``: refused: the legacy ``/build`` endpoint has no
  session to carry secrets or an SSH agent from the client, and running the
  step without them would build something else silently.

What runc creates in the rootfs to mount over is removed from the step's upper
dir before the diff (``drop_mountpoints``), so nothing of a mount is committed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from typing import Any, Callable

from ..dockerfile.parser import ParseError
from ..storage import rootfd

TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_KEYS = {
    "bind": {"target", "source", "from", "readonly", "readwrite"},
    "cache": {"target", "source", "from", "readonly", "readwrite", "id", "sharing", "mode", "uid", "gid"},
    "tmpfs": {"target", "size"},
    "secret": {"target", "id", "required", "mode", "uid", "gid", "env"},
    "ssh": {"target", "id", "required", "mode", "uid", "gid"},
}
_ALIASES = {"dst": "target", "destination": "target", "src": "source", "ro": "readonly", "rw": "readwrite"}
_BOOLS = {"readonly", "readwrite", "required"}
_SIZE = re.compile(r"^(\d+)\s*([kmgt]?)i?b?$", re.IGNORECASE)
MAX_TMPFS = 1 << 40


@dataclass
class Mount:
    type: str
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = False
    id: str = ""
    sharing: str = "shared"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    size: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def parse(value: str, line: int) -> Mount:
    """One ``--mount`` value (CSV of ``key=value``), checked as the Dockerfile frontend checks it."""
    def fail(message: str) -> ParseError:
        return ParseError(line, message)

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise fail(f"invalid mount value {value!r}") from None
    pairs: list[tuple[str, str | None]] = []
    kind = "bind"
    for f in fields:
        key, sep, val = f.partition("=")
        key = _ALIASES.get(key.strip().lower(), key.strip().lower())
        if key == "type":
            if val not in TYPES:
                raise fail(f"unsupported mount type {val!r}")
            kind = val
            continue
        pairs.append((key, val if sep else None))
    m = Mount(kind)
    allowed = _KEYS[kind]
    for key, val in pairs:
        if key not in allowed:
            raise fail(f"unexpected key '{key}' in '{key}{'' if val is None else '=' + val}' for mount type {kind}")
        if val is None and key not in _BOOLS:
            raise fail(f"invalid mount option '{key}': expected {key}=value")
        if key in _BOOLS:
            on = _bool(val, key, fail)
            if key == "readonly":
                m.readonly = on
            elif key == "readwrite":
                m.readonly = not on
            continue
        assert val is not None
        if key == "target":
            m.target = val
        elif key == "source":
            m.source = val
        elif key == "from":
            m.from_ = val
        elif key == "id":
            m.id = val
        elif key == "sharing":
            if val not in ("shared", "private", "locked"):
                raise fail(f"unsupported sharing value {val!r}")
            m.sharing = val
        elif key == "mode":
            try:
                m.mode = int(val, 8)
            except ValueError:
                raise fail(f"failed to parse mode {val!r}: not an octal number") from None
            if not 0 <= m.mode <= 0o7777:
                raise fail(f"mode {val!r} out of range")
        elif key in ("uid", "gid"):
            if not val.isdigit() or int(val) > 0xFFFFFFFE:
                raise fail(f"invalid {key} {val!r}")
            setattr(m, key, int(val))
        elif key == "size":
            m.size = _size(val, fail)
        else:
            m.extra[key] = val
    if kind in ("secret", "ssh"):
        raise fail(f"RUN --mount=type={kind} is not supported: the legacy /build endpoint cannot carry "
                   f"{'secrets' if kind == 'secret' else 'an SSH agent'} from the client (that needs a BuildKit "
                   f"session), and the step is not run without it")
    if not m.target:
        raise fail(f"mount type {kind} requires a target")
    if kind == "bind" and "readwrite" not in {k for k, _ in pairs}:
        m.readonly = True  # bind mounts are read-only unless rw is given
    return m


def _bool(val: str | None, key: str, fail: Callable[[str], ParseError]) -> bool:
    if val is None or val.lower() in ("true", "1"):
        return True
    if val.lower() in ("false", "0"):
        return False
    raise fail(f"invalid value for {key}: {val!r}")


def _size(val: str, fail: Callable[[str], ParseError]) -> int:
    m = _SIZE.match(val.strip())
    if not m:
        raise fail(f"invalid size {val!r}")
    n = int(m.group(1)) * (1 << (10 * " kmgt".index(m.group(2).lower() or " ")))
    if n > MAX_TMPFS:
        raise fail(f"tmpfs size {val!r} too large")
    return n


class Prepared:
    """The OCI mounts of one step, what its cache key covers, and the targets runc will create."""

    def __init__(self) -> None:
        self.oci: list[dict[str, Any]] = []
        self.key: list[Any] = []
        self.targets: list[str] = []


def resolve(root: str, source: str) -> str:
    """``source`` resolved below ``root`` as a process chrooted there would (openat2 ``RESOLVE_IN_ROOT``:
    symlinks and ``..`` never lead out), as the host path of what was opened.

    A path and not a descriptor, because runc mounts it from the step's own mount namespace, where a
    ``/proc/<pid>/fd`` link of ours names a mount of another namespace (EINVAL). The roots given here
    cannot change under the path: the build context is the daemon's own unpacked copy, and an image
    view is a read-only overlay of immutable layers, mounted by the daemon for the step.
    """
    root_fd = rootfd.open_root(root)
    try:
        fd = rootfd.open_in(root_fd, source)
    except OSError as e:
        raise FileNotFoundError(f"{source}: {e.strerror}") from None
    finally:
        os.close(root_fd)
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    top = os.path.realpath(root)
    if real != top and not real.startswith(top.rstrip("/") + "/"):
        raise FileNotFoundError(f"{source}: resolves outside its root")
    return real


def drop_mountpoints(upper: str, targets: list[str]) -> None:
    """Remove from a step's upper dir the empty directories and files runc made to mount over (deepest
    first, each parent too while it is empty), unless the step made the path opaque (replaced it).

    The step owned this tree a moment ago and may have left a symlink anywhere on a target's path, so
    every lookup is by descriptor below the upper dir, with no symlink followed (``RESOLVE_BENEATH |
    RESOLVE_NO_SYMLINKS``): a link makes the walk stop, never act on what it points to.
    """
    top = rootfd.open_root(upper)
    try:
        for target in sorted(set(targets), key=lambda t: -t.count("/")):
            parts = rootfd.components(target)
            while parts and _drop_one(top, parts):
                parts = parts[:-1]
    finally:
        os.close(top)


_NO_LINKS = rootfd.RESOLVE_BENEATH | rootfd.RESOLVE_NO_SYMLINKS | rootfd.RESOLVE_NO_MAGICLINKS


def _drop_one(top: int, parts: list[str]) -> bool:
    """Remove ``parts`` (below ``top``) when it is an empty directory or empty file runc made; whether
    it was removed."""
    try:
        parent = rootfd.openat2(top, "/".join(parts[:-1]) or ".", rootfd.DIR_FLAGS, resolve=_NO_LINKS)
    except OSError:
        return False
    name = parts[-1]
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            fd = rootfd.openat2(parent, name, rootfd.DIR_FLAGS, resolve=_NO_LINKS)
            try:
                if _opaque(fd) or any(True for _ in os.scandir(fd)):
                    return False
            finally:
                os.close(fd)
            os.rmdir(name, dir_fd=parent)
            return True
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(name, dir_fd=parent)
            return True
        return False
    except OSError:
        return False
    finally:
        os.close(parent)


def _opaque(fd: int) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        with contextlib.suppress(OSError):
            if os.getxattr(fd, name) == b"y":
                return True
    return False


def copy_for_rw(src: str, dest: str) -> str:
    """A throwaway copy of ``src`` (a path ``resolve`` gave) for a ``rw`` bind mount: the step's writes go there."""
    if os.path.isdir(src):
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest, follow_symlinks=False)
    return dest
