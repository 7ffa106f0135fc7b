"""Routes on a container's files: archive (docker cp), export, changes (docker diff), commit."""

from __future__ import annotations

import asyncio
import base64
import json

from .. import errors
from ..httpd.server import Request, Response, StreamResponse, empty_response, json_response
from .backend import ContainerFilesBackend, PathStat
from .images import BodyReader, _consume, _iterate_in_thread
from .router import Route, get, head, post, put

STAT_HEADER = "X-Docker-Container-Path-Stat"


def _stat_header(st: PathStat) -> list[tuple[str, str]]:
    return [(STAT_HEADER, base64.b64encode(json.dumps(st.as_json()).encode()).decode())]


def routes(backend: ContainerFilesBackend) -> list[Route]:
    def _path(request: Request) -> str:
        path = request.q("path")
        if not path:
            raise errors.InvalidParameter("path cannot be empty")
        return path

    async def stat(request: Request) -> Response:
        st = await asyncio.to_thread(backend.stat_path, request.params["name"], _path(request))
        return Response(200, b"", None, _stat_header(st))

    async def get_archive(request: Request) -> StreamResponse:
        st, chunks = await asyncio.to_thread(backend.read_archive, request.params["name"], _path(request))
        return StreamResponse(_iterate_in_thread(lambda: chunks), content_type="application/x-tar",
                              headers=_stat_header(st))

    async def put_archive(request: Request) -> Response:
        name, path = request.params["name"], _path(request)
        reader = BodyReader(request, asyncio.get_running_loop())
        await _consume(request, reader, lambda: backend.write_archive(
            name, path, reader, request.qbool("copyUIDGID"), request.qbool("noOverwriteDirNonDir")))
        return empty_response(200)

    async def export(request: Request) -> StreamResponse:
        chunks = await asyncio.to_thread(backend.export_container, request.params["name"])
        return StreamResponse(_iterate_in_thread(lambda: chunks), content_type="application/x-tar")

    async def changes(request: Request) -> Response:
        return json_response(await asyncio.to_thread(backend.container_changes, request.params["name"]))

    async def commit(request: Request) -> Response:
        config = await request.json(default=None)
        if config is not None and not isinstance(config, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        container = request.q("container") or ""
        if not container:
            raise errors.InvalidParameter("No container name or ID supplied")
        pause = request.q("pause") in (None, "") or request.qbool("pause")
        image_id = await asyncio.to_thread(
            backend.commit_container, container, request.q("repo") or "", request.q("tag") or "",
            request.q("comment") or "", request.q("author") or "", pause, request.qlist("changes"), config)
        return json_response({"Id": image_id}, 201)

    return [
        head("/containers/{name:.*}/archive", stat),
        get("/containers/{name:.*}/archive", get_archive),
        put("/containers/{name:.*}/archive", put_archive),
        get("/containers/{name:.*}/export", export),
        get("/containers/{name:.*}/changes", changes),
        post("/commit", commit),
    ]
