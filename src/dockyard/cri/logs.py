"""A pod container's log in the CRI format at the kubelet's ``<log_directory>/<log_path>``.

The kubelet and critest read ``<RFC3339Nano> <stdout|stderr> <F|P> <text>`` lines there. conmon
writes that very format to the container's journal, but the engine's json-file copier punches the
journal out as it copies and empties it once the container exits, so a link to it would lose what the
kubelet has not read yet. cri-dockerd links the path to dockerd's json-file log, which the kubelet
parses but critest does not. So the CRI writes the lines itself: one follower per running container
reads the engine's log (``log_reader``, the reader of ``docker logs``) and appends CRI lines.

Each batch is appended with a fresh open of the path, so the kubelet's rotation (rename, then
ReopenContainerLog) needs nothing but the new file; after a daemon restart a follower resumes past
the last time stamp the file holds.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from .. import errors
from ..util.timefmt import parse_ns
from .backend import Backend

log = logging.getLogger("dockyard.cri")

POLL = 0.25  # the engine's own copy interval: nothing arrives faster
_STREAMS = {1: b"stdout", 2: b"stderr"}


@dataclass
class Options:
    """The engine's log options (containers/logs.py's fields) the follower asks for."""

    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0
    tail: int = -1
    timestamps: bool = True


def to_cri(rendered: bytes, tty: bool, pending: bytearray) -> bytes:
    """CRI lines from the Docker API's rendering of log entries with time stamps (a frame per
    entry, or the raw bytes of a TTY); ``pending`` holds a TTY's unfinished text between calls."""
    out = bytearray()
    if tty:
        pending += rendered
        *lines, rest = bytes(pending).split(b"\n")
        pending[:] = rest
        for line in lines:
            stamp, _, text = line.partition(b" ")
            out += stamp + b" stdout F " + text.rstrip(b"\r") + b"\n"
        return bytes(out)
    view = memoryview(rendered)
    i = 0
    while i + 8 <= len(view):
        stream, size = view[i], int.from_bytes(view[i + 4:i + 8], "big")
        payload = bytes(view[i + 8:i + 8 + size])
        i += 8 + size
        stamp, _, text = payload.partition(b" ")
        tag = b"F" if text.endswith(b"\n") else b"P"
        out += stamp + b" " + _STREAMS.get(stream, b"stdout") + b" " + tag + b" " + text.rstrip(b"\n") + b"\n"
    return bytes(out)


def last_stamp(path: str) -> int:
    """The time stamp of the file's last line in ns; 0 for a missing or empty file."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read().rstrip(b"\n")
    except OSError:
        return 0
    last = tail.rsplit(b"\n", 1)[-1]
    return parse_ns(last.split(b" ", 1)[0]) if last else 0


def _append(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)


class CriLogs:
    def __init__(self, engine: Backend) -> None:
        self.engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def follow(self, container_id: str, path: str) -> None:
        """Keep ``path`` up to date with the container's output until it exits."""
        task = self._tasks.get(container_id)
        if task is None or task.done():
            self._tasks[container_id] = asyncio.get_running_loop().create_task(self._follow(container_id, path))

    async def settle(self, container_id: str) -> None:
        """Wait until the follower of an exited container has written everything (ContainerStatus
        says "exited" only once the log holds the last line, as the kubelet reads it then)."""
        task = self._tasks.get(container_id)
        if task is not None:
            await asyncio.shield(task)

    def forget(self, container_id: str) -> None:
        task = self._tasks.pop(container_id, None)
        if task is not None:
            task.cancel()

    async def _follow(self, container_id: str, path: str) -> None:
        containers = self.engine.containers
        try:
            c = await asyncio.to_thread(containers.get, container_id)
            tty = bool(c.config.get("Tty"))
            since = await asyncio.to_thread(last_stamp, path)
            opts = Options(since_ns=since + 1 if since else 0)
            reader = await asyncio.to_thread(containers.log_reader, container_id, opts)
        except errors.DockyardError as e:
            log.warning("following the log of %s: %s", container_id, e)
            return
        pending = bytearray()
        try:
            backlog = await asyncio.to_thread(lambda: b"".join(reader.backlog()))
            await asyncio.to_thread(_append, path, to_cri(backlog, tty, pending))
            while True:
                running = c.state.running
                await asyncio.to_thread(containers.sync_log, c)
                chunk = await asyncio.to_thread(lambda: b"".join(reader.more()))
                if chunk:
                    await asyncio.to_thread(_append, path, to_cri(chunk, tty, pending))
                if not running:
                    break
                await asyncio.sleep(POLL)
            if pending:
                stamp, _, text = bytes(pending).partition(b" ")
                await asyncio.to_thread(_append, path, stamp + b" stdout P " + text + b"\n")
        except OSError as e:
            log.warning("writing the CRI log %s: %s", path, e)
        finally:
            reader.close()
