"""The streaming Runtime over the engine's public services: its execs, its containers' attach
sockets, and a pod's network namespace.

The engine is seen through the Protocols below, as the rest of the CRI sees it through cri/backend.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import socket
from typing import Any, AsyncIterator, Callable, Protocol

from ... import errors
from ...network import netns
from .backend import Duplex, Reader, Size, Writer

CHUNK = 65536
# one packet per write to conmon's attach socket: it truncates packets larger than its buffer
STDIN_PACKET = 8192
CONMON_STDERR = 3  # the first byte of conmon's output packets: 2 stdout, 3 stderr
# once one direction of a forwarded connection ended, how long the other may go on (containerd's 1 s)
FORWARD_GRACE = 1.0


class Exec(Protocol):
    id: str
    tty: bool
    error: str
    done: concurrent.futures.Future[int]


class Session(Protocol):
    exec: Any  # an Exec
    stdin: int | None
    stdout: int | None
    stderr: int | None


class Execs(Protocol):
    def create(self, ref: str, body: dict[str, Any]) -> Exec: ...
    def start(self, exec_id: str, detach: bool = False) -> Session: ...
    def resize(self, exec_id: str, height: int, width: int) -> None: ...
    def wait_started(self, e: Any, timeout: float = 30.0) -> None: ...
    def close_session(self, session: Any) -> None: ...


class Containers(Protocol):
    def get(self, ref: str) -> Any: ...
    def attach_socket(self, ref: str) -> concurrent.futures.Future[socket.socket]: ...
    def resize(self, ref: str, height: int, width: int) -> None: ...


class Engine(Protocol):
    @property
    def execs(self) -> Execs: ...
    @property
    def containers(self) -> Containers: ...


class Sandboxes(Protocol):
    def sandbox_netns(self, sandbox_id: str) -> str:
        """The path of the pod's network namespace; "" for a pod on the host's network. Raises
        NotFound for an unknown pod."""
        ...


class ContainerSandboxes:
    """Sandboxes that are containers: a pod whose namespaces a (pause) container holds is reached
    through that container's process. The CRI's own pod records take over where pods are more."""

    def __init__(self, containers: Containers) -> None:
        self.containers = containers

    def sandbox_netns(self, sandbox_id: str) -> str:
        c = self.containers.get(sandbox_id)
        if (c.host_config.get("NetworkMode") or "") == "host":
            return ""
        if not c.state.running or not c.state.pid:
            raise errors.Conflict(f"pod sandbox {sandbox_id} is not running")
        return f"/proc/{c.state.pid}/ns/net"


class EngineRuntime:
    def __init__(self, engine: Engine, sandboxes: Sandboxes | None = None) -> None:
        self.engine = engine
        self.sandboxes: Sandboxes = sandboxes or ContainerSandboxes(engine.containers)

    def check_container(self, container_id: str) -> None:
        c = self.engine.containers.get(container_id)
        if not c.state.running:
            raise errors.Conflict(f"container {container_id} is not running")

    def check_sandbox(self, sandbox_id: str) -> None:
        self.sandboxes.sandbox_netns(sandbox_id)

    # -- exec ---------------------------------------------------------------------------------
    async def exec(self, container_id: str, cmd: list[str], tty: bool, stdin: Reader | None,
                   stdout: Writer | None, stderr: Writer | None, resize: AsyncIterator[Size] | None) -> int:
        svc = self.engine.execs
        e = await asyncio.to_thread(svc.create, container_id, {
            "Cmd": cmd, "Tty": tty, "AttachStdin": stdin is not None, "AttachStdout": stdout is not None,
            "AttachStderr": stderr is not None})
        session = await asyncio.to_thread(svc.start, e.id)
        tasks: list[asyncio.Task[None]] = []
        try:
            for fd in {session.stdin, session.stdout, session.stderr} - {None}:
                os.set_blocking(fd, False)  # type: ignore[arg-type]
            outputs = []
            if session.stdout is not None:
                outputs.append(asyncio.create_task(self._exec_output(session.stdout, stdout, None)))
            if session.stderr is not None:
                outputs.append(asyncio.create_task(self._exec_output(session.stderr, stderr, e)))
            tasks += outputs
            if stdin is not None and session.stdin is not None:
                tasks.append(asyncio.create_task(self._exec_input(session, stdin, tty)))
            if resize is not None:
                tasks.append(asyncio.create_task(_resizes(resize, lambda w, h: svc.resize(e.id, h, w))))
            await asyncio.gather(*outputs)
            code = await asyncio.wrap_future(e.done)
        finally:
            for task in tasks:
                task.cancel()
            svc.close_session(session)
        if e.error:
            raise errors.SystemError_(e.error)
        return code

    async def _exec_output(self, fd: int, client: Writer | None, e: Exec | None) -> None:
        """The process's output to the client (read away if the client did not ask for it). ``e``
        for stderr: runc writes its own failure there, which the session reports as its error."""
        first = e is not None
        while data := await _read_fd(fd):
            if first:
                first = False
                await asyncio.to_thread(self.engine.execs.wait_started, e)
                if e is not None and e.error:
                    continue
            if client is not None:
                await client.write(data)

    async def _exec_input(self, session: Session, client: Reader, tty: bool) -> None:
        assert session.stdin is not None
        while data := await client.read():
            await _write_fd(session.stdin, data)
        if not tty:  # EOF reaches the process; a terminal has no end of input but ^D, sent in-band
            os.close(session.stdin)
            session.stdin = None

    # -- attach -------------------------------------------------------------------------------
    async def attach(self, container_id: str, tty: bool, stdin: Reader | None, stdout: Writer | None,
                     stderr: Writer | None, resize: AsyncIterator[Size] | None) -> None:
        containers = self.engine.containers
        c = await asyncio.to_thread(containers.get, container_id)
        if not c.state.running:
            raise errors.Conflict(f"container {container_id} is not running")
        sock = await asyncio.wrap_future(containers.attach_socket(c.id))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()

        async def output() -> None:
            while packet := await loop.sock_recv(sock, CHUNK):
                client = stderr if packet[0] == CONMON_STDERR else stdout
                if client is not None and len(packet) > 1:
                    await client.write(packet[1:])

        async def input_(client: Reader) -> None:
            while data := await client.read():
                for i in range(0, len(data), STDIN_PACKET):
                    await loop.sock_sendall(sock, data[i:i + STDIN_PACKET])
            if c.config.get("StdinOnce") and not tty:
                sock.shutdown(socket.SHUT_WR)  # the container's stdin ends with this client's

        tasks = []
        if stdin is not None and c.config.get("OpenStdin"):
            tasks.append(asyncio.create_task(input_(stdin)))
        if resize is not None:
            tasks.append(asyncio.create_task(_resizes(resize, lambda w, h: containers.resize(c.id, h, w))))
        try:
            await output()
        finally:
            for task in tasks:
                task.cancel()
            sock.close()

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


async def _resizes(sizes: AsyncIterator[Size], apply: Callable[[int, int], None]) -> None:
    async for width, height in sizes:
        try:
            await asyncio.to_thread(apply, width, height)
        except errors.DockyardError:
            return  # the process has ended: nothing left to resize


async def _read_fd(fd: int) -> bytes:
    """One chunk from a non-blocking fd; b"" at EOF (EIO is how a PTY master says its slave closed)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            await _ready(loop.add_reader, loop.remove_reader, fd)
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise


async def _write_fd(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await _ready(loop.add_writer, loop.remove_writer, fd)


async def _ready(add: Callable[..., Any], remove: Callable[[int], Any], fd: int) -> None:
    ready = asyncio.get_running_loop().create_future()
    add(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        remove(fd)
