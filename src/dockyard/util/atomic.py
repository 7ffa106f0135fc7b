"""Files replaced whole: a reader (or a daemon started after a crash) sees the old content or the new, never half."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The temporary name is unique, so two writers of one path never share it.
    ``durable`` fsyncs the content before the rename: state the daemon must
    find again after a power loss, not only after a crash of its own.
    """
    path = os.fspath(path)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # open's mode went through the umask
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, mode: int = 0o644, durable: bool = True) -> None:
    write_atomic(path, json.dumps(data), mode=mode, durable=durable)
