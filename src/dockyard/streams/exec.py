"""An exec's stdio: its pipes, or the master of its PTY, as a stream with the client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import os
from typing import Any, Callable, Protocol

from . import fdio
from .detach import DEFAULT_KEYS, Scanner, parse_keys
from .duplex import STDERR, STDOUT, Duplex, Encoder


class ExecProcess(Protocol):
    tty: bool
    attach_stdout: bool
    attach_stderr: bool
    detach_keys: str  # as the exec was created ("" for the default)
    error: str  # what the runtime said when it could not start the process
    done: concurrent.futures.Future[Any]  # set once the process exited


class ExecSession(Protocol):
    """A started exec's fds, the caller's to close; ``stdin`` is set to None once the pump closed it."""

    exec: Any  # an ExecProcess
    stdin: int | None  # pipe write end, or the PTY master
    stdout: int | None  # pipe read end, or the PTY master
    stderr: int | None  # pipe read end (none with a TTY)


class Ending(enum.Enum):
    EXITED = "exited"  # the process ended and its output is all sent
    DETACHED = "detached"  # the client typed the detach keys; the process runs on
    LOST = "lost"  # the client's connection failed


def detach_keys(process: ExecProcess) -> bytes:
    """dockerd scans a TTY exec's input only: for the keys it was created with, else ctrl-p,ctrl-q."""
    if not process.tty:
        return b""
    return parse_keys(process.detach_keys) if process.detach_keys else DEFAULT_KEYS


async def pump(session: ExecSession, client: Duplex, encode: Encoder,
               wait_started: Callable[[], None]) -> Ending:
    """Client input to the process, its output to the client, until the process ended or the client
    detached (the caller then closes the session: the process loses its terminal).

    ``wait_started`` blocks until the runtime started the process or gave up: runc shares stderr
    with the process, and its own error must not reach the client twice."""
    e: ExecProcess = session.exec
    for fd in {session.stdin, session.stdout, session.stderr}:
        if fd is not None:
            os.set_blocking(fd, False)

    async def output(fd: int, kind: int, wanted: bool) -> None:
        first = True
        while True:
            data = await fdio.read(fd)
            if not data:
                return
            if first and kind == STDERR:
                await asyncio.to_thread(wait_started)
                first = False
                if e.error:
                    continue
            if wanted:
                await client.write(encode(kind, data))

    async def input_() -> bool:
        """Whether the client detached; False once its input ended."""
        assert session.stdin is not None
        scanner = Scanner(detach_keys(e))
        while True:
            data = await client.read()
            if not data:
                if not e.tty:
                    os.close(session.stdin)  # EOF reaches the process
                    session.stdin = None
                return False
            data, detached = scanner.feed(data)
            try:
                await fdio.write(session.stdin, data)
            except OSError:
                return False
            if detached:
                return True

    outputs = []
    if session.stdout is not None:
        outputs.append(asyncio.create_task(output(session.stdout, STDOUT, e.attach_stdout or e.tty)))
    if session.stderr is not None:
        outputs.append(asyncio.create_task(output(session.stderr, STDERR, e.attach_stderr)))
    in_task = asyncio.create_task(input_()) if session.stdin is not None else None
    try:
        ended = asyncio.ensure_future(_ended(outputs, e))
        waiting: set[asyncio.Future[Any]] = {ended} | ({in_task} if in_task is not None else set())
        while True:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if in_task in done:
                waiting.discard(in_task)
                if in_task.result():
                    ended.cancel()
                    return Ending.DETACHED
            if ended in done:
                ended.result()
                return Ending.EXITED
    except (ConnectionError, OSError):
        return Ending.LOST
    finally:
        for t in outputs:
            t.cancel()
        if in_task is not None:
            in_task.cancel()


async def _ended(outputs: list[asyncio.Task[None]], e: ExecProcess) -> None:
    """Once the process's output is all read and the process has exited."""
    if outputs:
        await asyncio.gather(*outputs)
    await asyncio.wrap_future(e.done)
