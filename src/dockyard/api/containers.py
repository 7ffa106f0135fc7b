"""Container routes: create, start, stop, kill, wait, logs, attach, inspect, list, remove, ..."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
from typing import Any, AsyncIterator

from .. import errors
from ..containers.view import LIST_FILTERS, PRUNE_FILTERS
from ..streams import attach as attachmod
from ..streams import logs as logstream
from ..streams.attach import ContainerStdio
from ..streams.detach import keys_or_default
from ..streams.duplex import encoder
from ..streams.logs import LogSource
from ..util import filters as flt
from . import create_checks
from .backend import ContainerBackend, StdioBackend
from ..httpd.server import (HijackFailure, HijackResponse, RawStream, Request, Response, StreamResponse, empty_response,
                   json_response)
from .networks import endpoint_input
from .router import Route, delete, error_message, error_status, get, post, version_at_least, version_tuple

MUX = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def routes(backend: ContainerBackend) -> list[Route]:
    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")

        def checked_create() -> str:
            create_checks.check(body, version_tuple(request.api_version), backend.find_container)
            endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig")
            if isinstance(endpoints, dict):
                body["NetworkingConfig"]["EndpointsConfig"] = {
                    k: endpoint_input(v, request.api_version) for k, v in endpoints.items()}
            return backend.create_container(request.q("name"), body, not version_at_least(request, "1.40"))

        return json_response({"Id": await asyncio.to_thread(checked_create), "Warnings": []}, 201)

    async def start(request: Request) -> Response:
        await asyncio.to_thread(backend.start_container, request.params["name"])
        return empty_response(204)

    async def stop(request: Request) -> Response:
        await asyncio.to_thread(backend.stop_container, request.params["name"], request.qint("t"),
                                request.q("signal"))
        return empty_response(204)

    async def restart(request: Request) -> Response:
        await asyncio.to_thread(backend.restart_container, request.params["name"], request.qint("t"),
                                request.q("signal"))
        return empty_response(204)

    async def kill(request: Request) -> Response:
        sig = backend.signal_number(request.q("signal"))
        name = request.params["name"]
        try:
            await asyncio.to_thread(backend.kill_container, name, sig)
        except errors.DockyardError as e:
            raise errors.wrap(e, f"Cannot kill container: {name}") from None  # dockerd's router says so
        return empty_response(204)

    async def pause(request: Request) -> Response:
        await asyncio.to_thread(backend.pause_container, request.params["name"])
        return empty_response(204)

    async def unpause(request: Request) -> Response:
        await asyncio.to_thread(backend.unpause_container, request.params["name"])
        return empty_response(204)

    async def wait(request: Request) -> StreamResponse:
        fut = await asyncio.to_thread(backend.wait_container, request.params["name"],
                                      request.q("condition") or "not-running")

        async def body() -> AsyncIterator[bytes]:
            yield b""  # headers now, as dockerd: the client knows the wait is in place
            result = await asyncio.wrap_future(fut)
            yield (json.dumps(result) + "\n").encode()

        return StreamResponse(body())

    async def remove(request: Request) -> Response:
        if request.qbool("link"):  # the name is a legacy link's, "/parent/alias": only the link goes
            await asyncio.to_thread(backend.remove_link, request.params["name"])
            return empty_response(204)
        await asyncio.to_thread(backend.remove_container, request.params["name"], request.qbool("force"),
                                request.qbool("v"))
        return empty_response(204)

    async def rename(request: Request) -> Response:
        new = request.q("name") or ""
        try:
            await asyncio.to_thread(backend.rename_container, request.params["name"], new)
        except errors.Conflict as e:
            if not str(e).startswith("Conflict. The container name"):
                raise
            raise errors.wrap(e, "Error when allocating new name") from None
        return empty_response(204)

    async def resize(request: Request) -> Response:
        h, w = request.qint("h", 0), request.qint("w", 0)
        await asyncio.to_thread(backend.resize_container, request.params["name"], h or 0, w or 0)
        return empty_response(200)

    async def inspect(request: Request) -> Response:
        info = await asyncio.to_thread(backend.inspect_container, request.params["name"], request.qbool("size"))
        if version_tuple(request.api_version) < (1, 45):
            _short_id_aliases(info)
        return json_response(info)

    async def list_(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), LIST_FILTERS)
        args = (request.qbool("all"), request.qint("limit", -1) or -1, wanted, request.qbool("size"))
        if request.qbool("size"):
            rows = await asyncio.to_thread(backend.list_containers, *args)
        else:
            # records, states and network memberships are in memory: a thread hop would cost more than the list
            rows = backend.list_containers(*args)
        # compact, as dockerd encodes it: a tenth fewer bytes for the client to read with hundreds of rows
        return Response(200, (_COMPACT.encode(rows) + "\n").encode(), "application/json")

    async def top(request: Request) -> Response:
        return json_response(await asyncio.to_thread(backend.top_container, request.params["name"],
                                                     request.q("ps_args") or "-ef"))

    async def prune(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), PRUNE_FILTERS)
        deleted, space = await asyncio.to_thread(backend.prune_containers, wanted)
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": space})

    async def logs(request: Request) -> StreamResponse:
        stdout, stderr = request.qbool("stdout"), request.qbool("stderr")
        if not (stdout or stderr):
            raise errors.InvalidParameter("Bad parameters: you must choose at least one stream")
        since = flt.parse_timestamp(request.q("since") or "", "since") if request.q("since") else 0
        until = flt.parse_timestamp(request.q("until") or "", "until") if request.q("until") else 0
        tail_text = request.q("tail") or "all"
        tail = -1
        if tail_text != "all":
            try:
                tail = int(tail_text)
            except ValueError:
                pass

        def open_log() -> tuple[ContainerStdio, LogSource]:
            c = backend.container_stdio(request.params["name"])
            return c, backend.open_log(c.id, stdout, stderr, timestamps=request.qbool("timestamps"),
                                       since_ns=since, until_ns=until, tail=tail)

        c, reader = await asyncio.to_thread(open_log)

        async def body() -> AsyncIterator[bytes]:
            yield b""  # headers now: `docker logs -f` of a quiet container shows nothing, but is connected
            async for chunk in logstream.stream(reader, request.qbool("follow"),
                                                lambda: backend.container_running(c.id),
                                                lambda: backend.sync_log(c.id)):
                yield chunk

        return StreamResponse(body(), content_type=RAW if c.tty else MUX)

    async def attach(request: Request) -> HijackResponse | HijackFailure:
        # dockerd takes the connection over before it looks the container up: a failure is told on it
        try:
            return await attach_streams(request)
        except errors.DockyardError as e:
            return HijackFailure(error_status(e), error_message(e, request))

    async def attach_streams(request: Request) -> HijackResponse:
        keys = keys_or_default(request.q("detachKeys"))
        # in a thread: the attach socket waits for the container's lock, which a start or an exit holds long
        c, fut = await asyncio.to_thread(_stdio_and_socket, backend, request.params["name"], request.qbool("stream"))
        opts = attachmod.AttachOptions(c, request.qbool("stdin"), request.qbool("stdout"), request.qbool("stderr"), keys)
        replay = request.qbool("logs") and c.logged

        async def handler(stream: RawStream) -> None:
            if replay:
                reader = await asyncio.to_thread(backend.open_log, c.id, opts.stdout, opts.stderr)
                try:
                    async for chunk in logstream.backlog(reader):
                        await stream.write(chunk)
                finally:
                    reader.close()
            if fut is None:
                return
            try:
                sock = await asyncio.wrap_future(fut)
            except errors.DockyardError:
                return
            await attachmod.pump(sock, stream, opts, encoder(not c.tty))

        # API 1.42 named the multiplexed stream's media type; older clients were told raw for both
        return HijackResponse(handler, MUX if not c.tty and version_at_least(request, "1.42") else RAW)

    return [
        post("/containers/create", create),
        get("/containers/json", list_),
        post("/containers/prune", prune, "1.25"),
        get("/containers/{name:.*}/json", inspect),
        get("/containers/{name:.*}/logs", logs),
        get("/containers/{name:.*}/top", top),
        post("/containers/{name:.*}/start", start),
        post("/containers/{name:.*}/stop", stop),
        post("/containers/{name:.*}/restart", restart),
        post("/containers/{name:.*}/kill", kill),
        post("/containers/{name:.*}/pause", pause),
        post("/containers/{name:.*}/unpause", unpause),
        post("/containers/{name:.*}/wait", wait),
        post("/containers/{name:.*}/rename", rename),
        post("/containers/{name:.*}/resize", resize),
        post("/containers/{name:.*}/attach", attach),
        delete("/containers/{name:.*}", remove),
    ]


def _stdio_and_socket(backend: StdioBackend, ref: str,
                      stream: bool) -> tuple[ContainerStdio, concurrent.futures.Future[socket.socket] | None]:
    """The container's stdio and (``stream``) its attach socket to come; blocking."""
    c = backend.container_stdio(ref)
    return c, backend.attach_socket(c.id) if stream else None


def _short_id_aliases(info: dict[str, Any]) -> None:
    """API < 1.45 lists the short container ID among a user network endpoint's aliases (CHANGELOG v1.45)."""
    short = info["Id"][:12]
    for name, ep in (info["NetworkSettings"].get("Networks") or {}).items():
        if name not in ("bridge", "host", "none", "default") and not name.startswith("container:"):
            if short not in (ep.get("Aliases") or []):
                ep["Aliases"] = [*(ep.get("Aliases") or []), short]
