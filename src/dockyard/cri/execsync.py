"""ExecSync: a command run to completion in a container, its stdout and stderr apart, with a deadline.

Through the engine's exec service (what ``docker exec`` uses): the process's pipes are read here, so
the two streams stay apart, and a deadline kills the process (as containerd) before it is reported.
"""

from __future__ import annotations

import concurrent.futures
import os
import select
import signal
import time

from .. import errors
from .backend import Backend, Exec
from .status import DeadlineExceeded

# the kubelet's probes get at most this much of each stream back (containerd's limit is 16 MiB)
MAX_OUTPUT = 16 << 20


def exec_sync(engine: Backend, container_id: str, cmd: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    if not cmd:
        raise errors.InvalidParameter("cmd is required")
    e = engine.execs.create(container_id, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
    try:
        return _run(engine, e, cmd, timeout)
    finally:
        # the kubelet's probes run one every period: a record kept for each would pile up until the
        # container is removed
        engine.execs.forget(e.id)


def _run(engine: Backend, e: Exec, cmd: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    session = engine.execs.start(e.id)
    if e.error:
        raise errors.InvalidParameter(f"failed to exec in container: {e.error}")
    out = {session.stdout: bytearray(), session.stderr: bytearray()}
    readers = [fd for fd in (session.stdout, session.stderr) if fd is not None]
    deadline = time.monotonic() + timeout if timeout > 0 else None
    try:
        while readers:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                _kill(engine, e)
                raise DeadlineExceeded(f"command {cmd!r} timed out after {timeout:g}s")
            ready, _, _ = select.select(readers, [], [], remaining)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    readers.remove(fd)
                elif len(out[fd]) < MAX_OUTPUT:
                    out[fd] += data[:MAX_OUTPUT - len(out[fd])]
        try:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            code = e.done.result(remaining)
        except concurrent.futures.TimeoutError:
            _kill(engine, e)
            raise DeadlineExceeded(f"command {cmd!r} timed out after {timeout:g}s") from None
    finally:
        for fd in (session.stdout, session.stderr):
            if fd is not None:
                os.close(fd)
    if e.error and code != 0:
        raise errors.InvalidParameter(f"failed to exec in container: {e.error}")
    return code, bytes(out.get(session.stdout, b"")), bytes(out.get(session.stderr, b""))


def _kill(engine: Backend, e: object) -> None:
    pid = engine.execs.pid(e)  # type: ignore[arg-type]
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
