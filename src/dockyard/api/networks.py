"""Network routes: create, list, inspect, remove, prune, connect, disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import errors
from ..httpd.server import Request, Response, empty_response, json_response
from ..network.view import LIST_FILTERS, PRUNE_FILTERS
from ..util import filters as flt
from .backend import NetworkBackend
from .router import Route, delete, get, post, version_tuple


def routes(backend: NetworkBackend) -> list[Route]:
    async def list_(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), LIST_FILTERS)
        return json_response(await asyncio.to_thread(backend.list_networks, wanted))

    async def inspect(request: Request) -> Response:
        return json_response(await asyncio.to_thread(backend.inspect_network, request.params["id"]))

    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        network_id = await asyncio.to_thread(backend.create_network, body)
        return json_response({"Id": network_id, "Warning": ""}, 201)

    async def remove(request: Request) -> Response:
        await asyncio.to_thread(backend.remove_network, request.params["id"])
        return empty_response(204)

    async def connect(request: Request) -> Response:
        body = await request.json(default={}) or {}
        cfg = endpoint_input(body.get("EndpointConfig") or {}, request.api_version)
        await asyncio.to_thread(backend.connect_network, request.params["id"], body.get("Container") or "", cfg)
        return empty_response(200)

    async def disconnect(request: Request) -> Response:
        body = await request.json(default={}) or {}
        await asyncio.to_thread(backend.disconnect_network, request.params["id"], body.get("Container") or "",
                                bool(body.get("Force")))
        return empty_response(200)

    async def prune(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), PRUNE_FILTERS)
        deleted = await asyncio.to_thread(backend.prune_networks, wanted)
        return json_response({"NetworksDeleted": deleted or None})

    return [
        get("/networks", list_),
        get("/networks/", list_),  # dockerd routes both (its one path with a trailing slash)
        post("/networks/create", create),
        post("/networks/prune", prune, min_version="1.25"),
        get("/networks/{id:[^/]+}", inspect),
        delete("/networks/{id:[^/]+}", remove),
        post("/networks/{id:[^/]+}/connect", connect),
        post("/networks/{id:[^/]+}/disconnect", disconnect),
    ]


def endpoint_input(cfg: Any, api_version: str) -> Any:
    """An EndpointSettings as the asked API version defines it: ``MacAddress`` is an input from 1.44 on
    (dockerd 20.10 ignores it there, ``Config.MacAddress`` being the way to set it)."""
    if isinstance(cfg, dict) and "MacAddress" in cfg and version_tuple(api_version) < (1, 44):
        return {k: v for k, v in cfg.items() if k != "MacAddress"}
    return cfg
