"""Volume routes: create, list, inspect, remove, prune."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import errors
from ..engine.engine import Engine
from ..volumes.local import Volume
from ..volumes.service import describe
from . import filters as flt
from .http import Request, Response, empty_response, json_response
from .router import Route, delete, get, post, version_tuple

LIST_FILTERS = frozenset({"dangling", "driver", "label", "name"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})
log = logging.getLogger("dockyard.api")


def routes(engine: Engine) -> list[Route]:
    svc = engine.volumes

    def shape(vol: Volume) -> dict[str, Any]:
        return describe(vol, svc.mountpoint(vol.name))

    async def create(request: Request) -> Response:
        body = await request.json() or {}
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON body")
        opts = body.get("DriverOpts") or {}
        labels = body.get("Labels") or {}
        vol = await asyncio.to_thread(svc.create, body.get("Name") or "", body.get("Driver") or "local",
                                      labels, opts)
        return json_response(shape(vol), 201)

    async def list_(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), LIST_FILTERS)
        dangling = flt.bool_value(wanted.get("dangling", []), "dangling")

        def select() -> list[dict[str, Any]]:
            out = []
            for vol in sorted(svc.all(), key=lambda v: v.name):
                if dangling is not None and bool(svc.users(vol.name)) == dangling:
                    continue
                if wanted.get("name") and not any(n in vol.name for n in wanted["name"]):
                    continue
                if wanted.get("driver") and vol.driver not in wanted["driver"]:
                    continue
                if wanted.get("label") and not flt.match_labels(vol.labels, wanted["label"]):
                    continue
                try:
                    out.append(shape(vol))
                except Exception:  # one bad record must not take the list from every client
                    log.exception("skipping volume %s in the list", vol.name)
            return out

        return json_response({"Volumes": await asyncio.to_thread(select), "Warnings": []})

    async def inspect(request: Request) -> Response:
        return json_response(shape(svc.get(request.params["name"])))

    async def remove(request: Request) -> Response:
        await asyncio.to_thread(svc.remove, request.params["name"], request.qbool("force"))
        return empty_response(204)

    async def prune(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), PRUNE_FILTERS)
        # API >= 1.42 prunes only anonymous volumes unless all=true, as dockerd does
        all_ = bool(flt.bool_value(wanted.get("all", []), "all")) or version_tuple(request.api_version) < version_tuple("1.42")

        def keep(vol: Volume) -> bool:
            if not all_ and not vol.anonymous:
                return True
            if wanted.get("label") and not flt.match_labels(vol.labels, wanted["label"]):
                return True
            if wanted.get("label!") and any(flt.match_labels(vol.labels, [x]) for x in wanted["label!"]):
                return True
            return False

        deleted, reclaimed = await asyncio.to_thread(svc.prune, keep)
        return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    return [
        get("/volumes", list_),
        post("/volumes/create", create),
        post("/volumes/prune", prune, min_version="1.25"),
        get("/volumes/{name:.*}", inspect),
        delete("/volumes/{name:.*}", remove),
    ]
