"""Exec routes: create, start (hijacked), resize, inspect."""

from __future__ import annotations

import asyncio
import base64
import errno
import os
from typing import Any

from .. import errors
from ..containers import logs as logmod
from ..containers.exec import Exec, ExecService, Session
from ..engine.engine import Engine
from .containers import DETACH_KEYS, _detach_keys
from .http import HijackResponse, RawStream, Request, Response, empty_response, json_response
from .router import Route, get, post, version_at_least

MUX = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"

EXEC_CONFIG = ("AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize", "DetachKeys", "Tty", "Env", "Cmd",
               "Privileged", "User", "WorkingDir")
EXEC_START = ("Detach", "Tty", "ConsoleSize")


def _canonical_keys(body: Any, fields: tuple[str, ...]) -> Any:
    """The body with its fields named as the API does: Go's decoder matches names without regard to
    case, and docker-py sends ``detachKeys``."""
    if not isinstance(body, dict):
        return body
    by_lower = {f.lower(): f for f in fields}
    out = dict(body)
    for key in body:
        name = by_lower.get(key.lower())
        if name and name != key and name not in body:
            out[name] = out.pop(key)
    return out


def routes(engine: Engine) -> list[Route]:
    svc: ExecService = engine.execs

    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        body = _canonical_keys(body, EXEC_CONFIG)
        if body.get("DetachKeys"):
            _escape_keys(body["DetachKeys"])  # refused before the exec exists, as dockerd
        e = await asyncio.to_thread(svc.create, request.params["name"], body)
        return json_response({"Id": e.id}, 201)

    async def start(request: Request) -> Response | HijackResponse:
        body = _canonical_keys(await request.json(default={}) or {}, EXEC_START)
        e = await asyncio.to_thread(svc.startable, request.params["id"])
        # as dockerd: the process has a terminal if the exec was created with one, while the stream
        # is multiplexed unless *this* request asks for Tty (docker-py starts a TTY exec without it
        # and reads frames)
        mux = not body.get("Tty")
        if body.get("ConsoleSize"):
            e.console_size = body["ConsoleSize"]
        if body.get("Detach"):
            await asyncio.to_thread(svc.start, e.id, True)
            return empty_response(200)
        if e.started:
            raise errors.Conflict(f"Error: Exec command {e.id} has already run")

        async def handler(stream: RawStream) -> None:
            # as dockerd: the upgrade answer goes out first, so no output can hide behind it in the
            # client's header buffer; a failure to start is then told in the stream
            try:
                session = await asyncio.to_thread(svc.start, e.id)
            except errors.DockyardError as err:
                text = (str(err) + "\r\n").encode()
                await stream.write(logmod.frame(1, text) if mux else text)
                stream.close()
                return
            try:
                await _pump(svc, session, stream, mux)
            finally:
                svc.close_session(session)
                stream.close()

        # API 1.42 named the multiplexed stream's media type; older clients were told raw for both
        multiplexed = mux and version_at_least(request, "1.42")
        return HijackResponse(handler, MUX if multiplexed else RAW)

    async def resize(request: Request) -> Response:
        h, w = request.qint("h", 0) or 0, request.qint("w", 0) or 0
        await asyncio.to_thread(svc.resize, request.params["id"], h, w)
        return empty_response(200)

    async def inspect(request: Request) -> Response:
        e = svc.get(request.params["id"])
        # a pid not known yet may take runc a few ms to write: wait for it off the event loop
        pid = e.pid or await asyncio.to_thread(svc.pid, e)
        return json_response(inspect_exec(e, pid))

    return [
        post("/containers/{name:.*}/exec", create),
        post("/exec/{id}/start", start),
        post("/exec/{id}/resize", resize),
        get("/exec/{id}/json", inspect),
    ]


def inspect_exec(e: Exec, pid: int) -> dict[str, Any]:
    return {
        "CanRemove": False,
        "ContainerID": e.container_id,
        # the parsed key bytes, which Go's JSON writes as base64 ("" when the default applies)
        "DetachKeys": base64.b64encode(_escape_keys(e.detach_keys)).decode() if e.detach_keys else "",
        "ExitCode": e.exit_code,
        "ID": e.id,
        "OpenStderr": e.attach_stderr,
        "OpenStdin": e.attach_stdin,
        "OpenStdout": e.attach_stdout,
        "ProcessConfig": {"arguments": e.cmd[1:], "entrypoint": e.cmd[0], "privileged": e.privileged,
                          "tty": e.tty, **({"user": e.user} if e.user else {})},
        "Running": e.running,
        "Pid": pid,
    }


async def _read(fd: int) -> bytes:
    """One chunk from a non-blocking fd; b"" at EOF (EIO is how a PTY master says its slave closed)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise


async def _write(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_writer(fd)


DETACHED = b"exec attach failed: error on attach stdin: read escape sequence\r\n"


def _escape_keys(spec: str) -> bytes:
    try:
        return _detach_keys(spec)
    except errors.InvalidParameter:
        raise errors.InvalidParameter(f"Invalid escape keys ({spec}) provided") from None


class _Escape:
    """Finds the detach sequence in a TTY exec's input; bytes that may start it are held back."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(the input to pass on, whether the sequence is complete)."""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    return bytes(out), True
                continue
            out += self.keys[:self.matched]
            self.matched = 1 if byte == self.keys[0] else 0
            if not self.matched:
                out.append(byte)
        return bytes(out), False


async def _pump(svc: ExecService, session: Session, client: RawStream, mux: bool) -> None:
    """Client input to the process, its output to the client; returns once the process ended or
    the client detached (the caller then closes the session: the process loses its terminal)."""
    e = session.exec
    for fd in {session.stdin, session.stdout, session.stderr}:
        if fd is not None:
            os.set_blocking(fd, False)

    async def output(fd: int, kind: int, wanted: bool) -> None:
        first = True
        while True:
            data = await _read(fd)
            if not data:
                return
            if first and kind == 2:
                # runc shares stderr with the process: its own error must not reach the client twice
                await asyncio.to_thread(svc.wait_started, e)
                first = False
                if e.error:
                    continue
            if wanted:
                await client.write(logmod.frame(kind, data) if mux else data)

    async def input_() -> bool:
        """Whether the client detached; False once its input ended."""
        assert session.stdin is not None
        # dockerd scans a TTY exec's input only; keys the exec was created with, else ctrl-p,ctrl-q
        escape = _Escape(_escape_keys(e.detach_keys) if e.detach_keys else DETACH_KEYS) if e.tty else None
        while True:
            data = await client.read()
            if not data:
                if not e.tty:
                    os.close(session.stdin)  # EOF reaches the process
                    session.stdin = None
                return False
            detached = False
            if escape is not None and escape.keys:
                data, detached = escape.feed(data)
            try:
                await _write(session.stdin, data)
            except OSError:
                return False
            if detached:
                return True

    outputs = []
    if session.stdout is not None:
        outputs.append(asyncio.create_task(output(session.stdout, 1, e.attach_stdout or e.tty)))
    if session.stderr is not None:
        outputs.append(asyncio.create_task(output(session.stderr, 2, e.attach_stderr)))
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
                    # dockerd tells the detach as an attach error, in the stream
                    await client.write(logmod.frame(1, DETACHED) if mux else DETACHED)
                    return
            if ended in done:
                ended.result()
                break
        if e.error:
            text = (e.error + "\r\n").encode()
            await client.write(logmod.frame(1, text) if mux else text)
    except (ConnectionError, OSError):
        pass
    finally:
        for t in outputs:
            t.cancel()
        if in_task is not None:
            in_task.cancel()


async def _ended(outputs: list[asyncio.Task[None]], e: Exec) -> None:
    """Once the process's output is all read and the process has exited."""
    if outputs:
        await asyncio.gather(*outputs)
    await asyncio.wrap_future(e.done)
