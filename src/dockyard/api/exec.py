"""Exec routes: create, start (hijacked), resize, inspect."""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any

from .. import errors
from ..containers import logs as logmod
from ..containers.exec import Exec, ExecService, Session
from ..engine.engine import Engine
from .http import HijackResponse, RawStream, Request, Response, empty_response, json_response
from .router import Route, get, post

MUX = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def routes(engine: Engine) -> list[Route]:
    svc: ExecService = engine.execs

    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        e = await asyncio.to_thread(svc.create, request.params["name"], body)
        return json_response({"Id": e.id}, 201)

    async def start(request: Request) -> Response | HijackResponse:
        body = await request.json(default={}) or {}
        e = svc.get(request.params["id"])
        if body.get("Tty") is not None:
            e.tty = bool(body["Tty"]) or e.tty
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
                await stream.write(text if e.tty else logmod.frame(1, text))
                stream.close()
                return
            try:
                await _pump(svc, session, stream)
            finally:
                svc.close_session(session)
                stream.close()

        return HijackResponse(handler, RAW if e.tty else MUX)

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
        "DetachKeys": e.detach_keys,
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


async def _pump(svc: ExecService, session: Session, client: RawStream) -> None:
    """Client input to the process, its output to the client; returns once the process ended."""
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
                await client.write(data if e.tty else logmod.frame(kind, data))

    async def input_() -> None:
        assert session.stdin is not None
        while True:
            data = await client.read()
            if not data:
                if not e.tty:
                    os.close(session.stdin)  # EOF reaches the process
                    session.stdin = None
                return
            try:
                await _write(session.stdin, data)
            except OSError:
                return

    outputs = []
    if session.stdout is not None:
        outputs.append(asyncio.create_task(output(session.stdout, 1, e.attach_stdout or e.tty)))
    if session.stderr is not None:
        outputs.append(asyncio.create_task(output(session.stderr, 2, e.attach_stderr)))
    in_task = asyncio.create_task(input_()) if session.stdin is not None else None
    try:
        if outputs:
            await asyncio.gather(*outputs)
        await asyncio.wrap_future(e.done)
        if e.error:
            text = (e.error + "\r\n").encode()
            await client.write(text if e.tty else logmod.frame(1, text))
    except (ConnectionError, OSError):
        pass
    finally:
        for t in outputs:
            t.cancel()
        if in_task is not None:
            in_task.cancel()
