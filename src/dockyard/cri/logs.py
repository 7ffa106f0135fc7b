"""A pod container's log in the CRI format at the kubelet's ``<log_directory>/<log_path>``.

The kubelet and critest read ``<RFC3339Nano> <stdout|stderr> <F|P> <text>`` lines there, the format
conmon writes to the container's journal. The engine's log copier, which turns the journal into the
json-file log that ``docker logs`` reads, appends those very lines to the kubelet's path as it copies
them (``Container.log_mirror``), opening the path for each batch: the kubelet's rotation (rename, then
ReopenContainerLog) needs only the new file, and a daemon restart resumes where the copy was. So the CRI
makes the file when the container starts and when the kubelet rotates it, and before it reports a
container exited it has the engine copy what the shim wrote last (the kubelet reads the log then).
"""

from __future__ import annotations

import os

from .. import errors
from .backend import Backend


def make(path: str) -> None:
    """The log file there, empty if new (the kubelet and critest open it right away)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o640))


def settle(engine: Backend, container_id: str) -> None:
    """Everything the container's shim wrote is in its logs (a no-op for one gone meanwhile)."""
    try:
        engine.containers.sync_log(engine.containers.get(container_id))
    except errors.NotFound:
        pass
