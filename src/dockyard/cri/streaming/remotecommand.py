"""Exec and attach sessions: the kubelet's remotecommand protocol over SPDY or a WebSocket.

Over SPDY the client opens one stream per purpose, named by its ``streamType`` header: ``error``,
then ``stdin``, ``stdout``, ``stderr`` as asked, and ``resize`` for a terminal (from
``v3.channel.k8s.io`` on). Over a WebSocket the same purposes are the channels 0 (stdin), 1 (stdout),
2 (stderr), 3 (error) and 4 (resize). Resize messages are JSON objects ``{"Width": w, "Height": h}``
one after another. When the session ends, the error stream carries how: from ``v4`` on a JSON
``metav1.Status`` (a non-zero exit code is the cause ``ExitCode`` of reason ``NonZeroExitCode``),
before it the failure's message as text and nothing on success.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable

from ... import errors
from ...httpd.server import RawStream
from . import spdy, websocket
from .backend import Reader, Runtime, Size, Writer

log = logging.getLogger("dockyard.cri.streaming")

V1, V2, V3, V4 = "channel.k8s.io", "v2.channel.k8s.io", "v3.channel.k8s.io", "v4.channel.k8s.io"
SPDY_PROTOCOLS = [V4, V3, V2, V1]  # in order of preference
WEBSOCKET_PROTOCOLS = ["", websocket.CHANNEL, websocket.BASE64_CHANNEL, websocket.V4_CHANNEL,
                       websocket.V4_BASE64_CHANNEL, websocket.V5_CHANNEL]
# how long a SPDY client may take to open its streams (the kubelet's DefaultStreamCreationTimeout)
STREAM_CREATION_TIMEOUT = 30.0
MAX_RESIZE_MESSAGE = 4096

STDIN, STDOUT, STDERR, ERROR, RESIZE = "stdin", "stdout", "stderr", "error", "resize"

Status = dict[str, Any]


@dataclass
class ExecRequest:
    container_id: str
    cmd: list[str]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool


@dataclass
class AttachRequest:
    container_id: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool


Request = ExecRequest | AttachRequest


@dataclass
class Streams:
    stdin: Reader | None
    stdout: Writer | None
    stderr: Writer | None
    resize: AsyncIterator[Size] | None


# -- statuses (metav1.Status) ---------------------------------------------------------------------

def success() -> Status:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, cmd: list[str]) -> Status:
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: command '{' '.join(cmd)}' exited with {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_error(message: str) -> Status:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


def status_bytes(status: Status, json_status: bool) -> bytes:
    """The error stream's content: JSON from v4 on; before, a failure's message and nothing on success."""
    if json_status:
        return json.dumps(status).encode()
    return b"" if status["status"] == "Success" else status["message"].encode()


# -- the sessions ---------------------------------------------------------------------------------

async def sizes(stream: Reader) -> AsyncIterator[Size]:
    """The terminal sizes a resize stream carries, as they come."""
    decoder = json.JSONDecoder()
    buf = ""
    while data := await stream.read():
        buf += data.decode("utf-8", "replace")
        while buf := buf.lstrip():
            try:
                size, end = decoder.raw_decode(buf)
            except ValueError:
                if len(buf) > MAX_RESIZE_MESSAGE:
                    return  # never a size: the client is not speaking the protocol
                break
            buf = buf[end:]
            if isinstance(size, dict):
                try:
                    yield int(size.get("Width", 0)), int(size.get("Height", 0))
                except (TypeError, ValueError):
                    continue


async def run(runtime: Runtime, request: Request, streams: Streams) -> Status | None:
    """The session's work and how it ended; None if the client went away meanwhile."""
    try:
        if isinstance(request, ExecRequest):
            try:
                code = await runtime.exec(request.container_id, request.cmd, request.tty, streams.stdin,
                                          streams.stdout, streams.stderr, streams.resize)
            except errors.DockyardError as e:
                return internal_error(f"error executing command in container: {e}")
            return success() if code == 0 else exit_status(code, request.cmd)
        try:
            await runtime.attach(request.container_id, request.tty, streams.stdin, streams.stdout,
                                 streams.stderr, streams.resize)
        except errors.DockyardError as e:
            return internal_error(f"error attaching to container: {e}")
        return success()
    except (ConnectionError, OSError):
        return None


async def until_gone(work: Awaitable[Status | None], serving: asyncio.Task[None]) -> Status | None:
    """``work``'s result, or None once the client's connection ended first (the work is cancelled)."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, serving}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return None


def expected_spdy_streams(request: Request, protocol: str) -> int:
    resize = request.tty and protocol in (V3, V4)
    return 1 + request.stdin + request.stdout + request.stderr + resize


async def over_spdy(raw: RawStream, protocol: str, request: Request,
                    runtime: Runtime) -> None:
    conn = spdy.Connection(raw.read, raw.write)
    named: dict[str, spdy.Stream] = {}
    expected = expected_spdy_streams(request, protocol)
    ready = asyncio.Event()

    async def accept(stream: spdy.Stream) -> bool:
        kind = stream.header("streamType")
        if kind in (ERROR, STDIN, STDOUT, STDERR, RESIZE):
            named[kind] = stream
            if len(named) >= expected:
                ready.set()
        else:
            log.warning("remotecommand: unexpected stream type %r", kind)
        return True

    serving = asyncio.create_task(conn.serve(accept))
    try:
        waiting = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({waiting, serving}, timeout=STREAM_CREATION_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if waiting not in done or ERROR not in named:
            log.warning("remotecommand: the client did not open its streams")
            return
        streams = Streams(stdin=named.get(STDIN) if request.stdin else None,
                          stdout=named.get(STDOUT) if request.stdout else None,
                          stderr=named.get(STDERR) if request.stderr else None,
                          resize=sizes(named[RESIZE]) if RESIZE in named else None)
        status = await until_gone(run(runtime, request, streams), serving)
        if status is None:
            return
        for kind in (STDOUT, STDERR):
            if kind in named:
                await named[kind].close()
        report = status_bytes(status, protocol == V4)
        if report:
            await named[ERROR].write(report)
        await named[ERROR].close()
    except (ConnectionError, OSError):
        pass
    finally:
        await conn.go_away()
        serving.cancel()
        raw.close()


async def over_websocket(raw: RawStream, protocol: str, request: Request, runtime: Runtime) -> None:
    kinds = [(request.stdin, False), (False, request.stdout), (False, request.stderr), (False, True), (True, False)]
    conn = websocket.ChannelConnection(raw, protocol, kinds)
    serving = asyncio.create_task(conn.serve())
    stdin, stdout, stderr, error, resize = conn.channels
    try:
        # as the kubelet: an empty message on the first channel we write tells the client we are ready
        await (stdout if request.stdout else stderr if request.stderr else error).write(b"")
        streams = Streams(stdin=stdin if request.stdin else None, stdout=stdout if request.stdout else None,
                          stderr=stderr if request.stderr else None,
                          resize=sizes(resize) if request.tty else None)
        status = await until_gone(run(runtime, request, streams), serving)
        if status is not None:
            json_status = protocol in (websocket.V4_CHANNEL, websocket.V4_BASE64_CHANNEL, websocket.V5_CHANNEL)
            report = status_bytes(status, json_status)
            if report:
                await error.write(report)
    except (ConnectionError, OSError):
        pass
    finally:
        await conn.close()
        serving.cancel()

