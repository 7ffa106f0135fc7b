"""Exec routes: create, start (hijacked), resize, inspect."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import errors
from ..httpd.server import HijackResponse, RawStream, Request, Response, empty_response, json_response
from ..streams import exec as execstream
from ..streams.detach import parse_keys
from ..streams.duplex import STDOUT, encoder
from .backend import ExecBackend
from .router import Route, get, post, version_at_least

MUX = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
DETACHED = b"exec attach failed: error on attach stdin: read escape sequence\r\n"

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


def routes(backend: ExecBackend) -> list[Route]:
    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        body = _canonical_keys(body, EXEC_CONFIG)
        if body.get("DetachKeys"):
            parse_keys(body["DetachKeys"], "escape")  # refused before the exec exists, as dockerd
        exec_id = await asyncio.to_thread(backend.create_exec, request.params["name"], body)
        return json_response({"Id": exec_id}, 201)

    async def start(request: Request) -> Response | HijackResponse:
        body = _canonical_keys(await request.json(default={}) or {}, EXEC_START)
        exec_id = request.params["id"]
        started = await asyncio.to_thread(backend.prepare_exec_start, exec_id, body.get("ConsoleSize"))
        # as dockerd: the process has a terminal if the exec was created with one, while the stream
        # is multiplexed unless *this* request asks for Tty (docker-py starts a TTY exec without it
        # and reads frames)
        encode = encoder(not body.get("Tty"))
        if body.get("Detach"):
            await asyncio.to_thread(backend.start_exec_detached, exec_id)
            return empty_response(200)
        if started:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")

        async def handler(stream: RawStream) -> None:
            # as dockerd: the upgrade answer goes out first, so no output can hide behind it in the
            # client's header buffer; a failure to start is then told in the stream
            try:
                session = await asyncio.to_thread(backend.start_exec, exec_id)
            except errors.DockyardError as err:
                await stream.write(encode(STDOUT, (str(err) + "\r\n").encode()))
                stream.close()
                return
            try:
                ending = await execstream.pump(session, stream, encode, lambda: backend.exec_started(session))
                # dockerd tells a detach as an attach error, and the runtime's refusal, in the stream
                if ending is execstream.Ending.DETACHED:
                    await stream.write(encode(STDOUT, DETACHED))
                elif ending is execstream.Ending.EXITED and session.exec.error:
                    await stream.write(encode(STDOUT, (session.exec.error + "\r\n").encode()))
            except (ConnectionError, OSError):
                pass
            finally:
                backend.close_exec(session)
                stream.close()

        # API 1.42 named the multiplexed stream's media type; older clients were told raw for both
        multiplexed = not body.get("Tty") and version_at_least(request, "1.42")
        return HijackResponse(handler, MUX if multiplexed else RAW)

    async def resize(request: Request) -> Response:
        h, w = request.qint("h", 0) or 0, request.qint("w", 0) or 0
        await asyncio.to_thread(backend.resize_exec, request.params["id"], h, w)
        return empty_response(200)

    async def inspect(request: Request) -> Response:
        # a pid not known yet may take runc a few ms to write: waited for off the event loop
        return json_response(await asyncio.to_thread(backend.inspect_exec, request.params["id"]))

    return [
        post("/containers/{name:.*}/exec", create),
        post("/exec/{id}/start", start),
        post("/exec/{id}/resize", resize),
        get("/exec/{id}/json", inspect),
    ]
