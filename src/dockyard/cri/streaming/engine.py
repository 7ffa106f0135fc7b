"""The streaming Runtime over the engine's front-end surface (engine/surface.py): its execs, its
containers' attach sockets, and a pod's network namespace.

The engine is seen through the Protocols below, as the rest of the CRI sees it through cri/backend.py.
The byte moving is the streams package's (shared with the Docker API), except an exec's: its pump
scans a TTY's input for Docker's detach keys, and the kubelet's exec has none (ctrl-p, ctrl-q must
reach the process), so the exec's pipes are pumped here with its fd helpers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
from typing import Any, AsyncIterator, Callable, Protocol

from ... import errors
from ...network import netns
from ...streams import attach as attachstream
from ...streams import fdio
from ...streams.attach import ContainerStdio
from ...streams.duplex import STDERR, STDOUT
from ...streams.exec import ExecSession
from .backend import Duplex, Reader, Sandboxes, Size, Writer

CHUNK = 65536
# once one direction of a forwarded connection ended, how long the other may go on (containerd's 1 s)
FORWARD_GRACE = 1.0


class Engine(Protocol):
    def find_container(self, ref: str) -> str: ...
    def container_running(self, container_id: str) -> bool: ...
    def container_stdio(self, ref: str) -> ContainerStdio: ...
    def attach_socket(self, container_id: str) -> concurrent.futures.Future[socket.socket]: ...
    def resize_container(self, ref: str, height: int, width: int) -> None: ...
    def create_exec(self, container_ref: str, body: dict[str, Any]) -> str: ...
    def start_exec(self, exec_id: str) -> ExecSession: ...
    def exec_started(self, session: Any) -> None: ...
    def close_exec(self, session: Any) -> None: ...
    def resize_exec(self, exec_id: str, height: int, width: int) -> None: ...


class NoPods:
    """Until the CRI's RuntimeService is loaded (its first client) it has handed out no port-forward
    URL, so no pod is known here; then it installs its own sandboxes (``Runtime.sandboxes``)."""

    def sandbox_netns(self, sandbox_id: str) -> str:
        raise errors.NotFound(f"pod sandbox {sandbox_id!r} not found")


class _Outputs:
    """The client's stdout and stderr as the one Duplex the streams package writes to: its encoder
    tags each piece with its stream, and ``write`` sends it to that stream's writer."""

    def __init__(self, stdin: Reader | None, stdout: Writer | None, stderr: Writer | None) -> None:
        self.stdin = stdin
        self.writers = {STDOUT: stdout, STDERR: stderr}

    @staticmethod
    def tag(kind: int, payload: bytes) -> bytes:
        return bytes((kind,)) + payload

    async def read(self) -> bytes:
        return await self.stdin.read() if self.stdin is not None else b""

    async def write(self, data: bytes) -> None:
        writer = self.writers[data[0]]
        if writer is not None and len(data) > 1:
            await writer.write(data[1:])

    def close(self) -> None:
        """The session's caller ends the client's streams, with the session's status."""


class EngineRuntime:
    def __init__(self, engine: Engine, sandboxes: Sandboxes | None = None) -> None:
        self.engine = engine
        self.sandboxes: Sandboxes = sandboxes or NoPods()

    def check_container(self, container_id: str) -> None:
        if not self.engine.container_running(self.engine.find_container(container_id)):
            raise errors.Conflict(f"container {container_id} is not running")

    def check_sandbox(self, sandbox_id: str) -> None:
        self.sandboxes.sandbox_netns(sandbox_id)

    # -- exec ---------------------------------------------------------------------------------
    async def exec(self, container_id: str, cmd: list[str], tty: bool, stdin: Reader | None,
                   stdout: Writer | None, stderr: Writer | None, resize: AsyncIterator[Size] | None) -> int:
        engine = self.engine
        exec_id = await asyncio.to_thread(engine.create_exec, container_id, {
            "Cmd": cmd, "Tty": tty, "AttachStdin": stdin is not None, "AttachStdout": stdout is not None,
            "AttachStderr": stderr is not None})
        session = await asyncio.to_thread(engine.start_exec, exec_id)
        process = session.exec
        tasks: list[asyncio.Task[None]] = []
        try:
            for fd in {session.stdin, session.stdout, session.stderr} - {None}:
                os.set_blocking(fd, False)  # type: ignore[arg-type]
            outputs = []
            if session.stdout is not None:
                outputs.append(asyncio.create_task(self._exec_output(session.stdout, stdout, None)))
            if session.stderr is not None:
                outputs.append(asyncio.create_task(self._exec_output(session.stderr, stderr, session)))
            tasks += outputs
            if stdin is not None and session.stdin is not None:
                tasks.append(asyncio.create_task(_exec_input(session, stdin, tty)))
            if resize is not None:
                tasks.append(asyncio.create_task(_resizes(resize, lambda w, h: engine.resize_exec(exec_id, h, w))))
            await asyncio.gather(*outputs)
            code: int = await asyncio.wrap_future(process.done)
        finally:
            for task in tasks:
                task.cancel()
            engine.close_exec(session)
        if process.error:
            raise errors.SystemError_(process.error)
        return code

    async def _exec_output(self, fd: int, client: Writer | None, session: ExecSession | None) -> None:
        """The process's output to the client (read away if the client did not ask for it).
        ``session`` for stderr: runc writes its own failure there, which the status reports."""
        first = session is not None
        while data := await fdio.read(fd):
            if first and session is not None:
                first = False
                await asyncio.to_thread(self.engine.exec_started, session)
                if session.exec.error:
                    continue
            if client is not None:
                await client.write(data)

    # -- attach -------------------------------------------------------------------------------
    async def attach(self, container_id: str, tty: bool, stdin: Reader | None, stdout: Writer | None,
                     stderr: Writer | None, resize: AsyncIterator[Size] | None) -> None:
        engine = self.engine
        stdio = await asyncio.to_thread(engine.container_stdio, container_id)
        if not engine.container_running(stdio.id):
            raise errors.Conflict(f"container {container_id} is not running")
        sock = await asyncio.wrap_future(engine.attach_socket(stdio.id))
        opts = attachstream.AttachOptions(stdio, stdin is not None, stdout is not None, stderr is not None,
                                          detach_keys=b"")  # the kubelet's attach has no detach keys
        resizing = (asyncio.create_task(_resizes(resize, lambda w, h: engine.resize_container(stdio.id, h, w)))
                    if resize is not None else None)
        try:
            await attachstream.pump(sock, _Outputs(stdin, stdout, stderr), opts, _Outputs.tag)
        finally:
            if resizing is not None:
                resizing.cancel()

    # -- port forward ---------------------------------------------------------------------------
    async def port_forward(self, sandbox_id: str, port: int, stream: Duplex) -> None:
        path = await asyncio.to_thread(self.sandboxes.sandbox_netns, sandbox_id)
        sock = await asyncio.to_thread(_connect, path, port)
        loop = asyncio.get_running_loop()

        async def to_pod() -> None:
            while data := await stream.read():
                await loop.sock_sendall(sock, data)
            sock.shutdown(socket.SHUT_WR)

        async def from_pod() -> None:
            while data := await loop.sock_recv(sock, CHUNK):
                await stream.write(data)

        directions = {asyncio.create_task(to_pod()), asyncio.create_task(from_pod())}
        try:
            _, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                await asyncio.wait(pending, timeout=FORWARD_GRACE)
            for task in directions:
                failure = task.exception() if task.done() and not task.cancelled() else None
                if isinstance(failure, OSError):
                    # told on the port's error stream, as containerd tells a failed copy
                    raise errors.Unavailable(f"forwarding port {port}: {failure}")
                if failure is not None:
                    raise failure
        finally:
            for task in directions:
                task.cancel()
            sock.close()


def _connect(path: str, port: int) -> socket.socket:
    """A connection to ``port`` on localhost inside the namespace at ``path`` (the host's if "").

    The socket is made inside the namespace and stays there when the thread leaves it."""
    def dial() -> socket.socket:
        last: OSError | None = None
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                sock.connect((host, port))
            except OSError as e:
                sock.close()
                last = e
                continue
            sock.setblocking(False)
            return sock
        assert last is not None
        where = f" inside namespace {path}" if path else ""
        raise errors.Unavailable(f"failed to connect to localhost:{port}{where}: {last.strerror or last}")

    if not path:
        return dial()
    if not os.path.exists(path):
        raise errors.NotFound(f"network namespace {path} does not exist")
    with netns.entered(path):
        return dial()


async def _exec_input(session: ExecSession, client: Reader, tty: bool) -> None:
    assert session.stdin is not None
    while data := await client.read():
        await fdio.write(session.stdin, data)
    if not tty:  # EOF reaches the process; a terminal has no end of input but ^D, sent in-band
        os.close(session.stdin)
        session.stdin = None


async def _resizes(sizes: AsyncIterator[Size], apply: Callable[[int, int], None]) -> None:
    async for width, height in sizes:
        try:
            await asyncio.to_thread(apply, width, height)
        except errors.DockyardError:
            return  # the process has ended: nothing left to resize
