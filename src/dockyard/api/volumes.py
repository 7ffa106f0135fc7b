"""Volume routes: create, list, inspect, remove, prune."""

from __future__ import annotations

import asyncio

from .. import errors
from ..httpd.server import Request, Response, empty_response, json_response
from ..util import filters as flt
from ..volumes.view import LIST_FILTERS, PRUNE_FILTERS
from .backend import VolumeBackend
from .router import Route, delete, get, post, version_tuple


def routes(backend: VolumeBackend) -> list[Route]:
    async def create(request: Request) -> Response:
        body = await request.json() or {}
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON body")
        opts = body.get("DriverOpts") or {}
        labels = body.get("Labels") or {}
        vol = await asyncio.to_thread(backend.create_volume, body.get("Name") or "", body.get("Driver") or "local",
                                      labels, opts)
        return json_response(vol, 201)

    async def list_(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), LIST_FILTERS)
        return json_response({"Volumes": await asyncio.to_thread(backend.list_volumes, wanted), "Warnings": []})

    async def inspect(request: Request) -> Response:
        return json_response(await asyncio.to_thread(backend.inspect_volume, request.params["name"]))

    async def remove(request: Request) -> Response:
        await asyncio.to_thread(backend.remove_volume, request.params["name"], request.qbool("force"))
        return empty_response(204)

    async def prune(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), PRUNE_FILTERS)
        # API >= 1.42 prunes only anonymous volumes unless all=true, as dockerd does
        all_ = (bool(flt.bool_value(wanted.get("all", []), "all"))
                or version_tuple(request.api_version) < version_tuple("1.42"))
        deleted, reclaimed = await asyncio.to_thread(backend.prune_volumes, wanted, all_)
        return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    return [
        get("/volumes", list_),
        post("/volumes/create", create),
        post("/volumes/prune", prune, min_version="1.25"),
        get("/volumes/{name:.*}", inspect),
        delete("/volumes/{name:.*}", remove),
    ]
