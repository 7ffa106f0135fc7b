"""Network routes: create, list, inspect, remove, prune, connect, disconnect."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from .. import errors
from ..containers.record import parse_iso
from ..engine.engine import Engine
from ..network.records import Network
from . import filters as flt
from .http import Request, Response, empty_response, json_response
from .router import Route, delete, get, post, version_tuple

LIST_FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})
PRUNE_FILTERS = frozenset({"until", "label", "label!"})
log = logging.getLogger("dockyard.api")


def routes(engine: Engine) -> list[Route]:
    svc = engine.networks

    async def list_(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), LIST_FILTERS)
        for t in wanted.get("type", []):
            if t not in ("custom", "builtin"):
                raise errors.InvalidParameter(f"invalid filter: 'type'='{t}'")
        out = []
        for n in svc.all():
            try:
                if _matches(n, wanted):
                    out.append(shape(engine, n, containers=False))
            except Exception:  # one bad record must not take the list from every client
                log.exception("skipping network %s in the list", n.id)
        return json_response(out)

    async def inspect(request: Request) -> Response:
        n = svc.get(request.params["id"])
        return json_response(shape(engine, n, containers=True))

    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        n = await asyncio.to_thread(svc.create, body)
        return json_response({"Id": n.id, "Warning": ""}, 201)

    async def remove(request: Request) -> Response:
        await asyncio.to_thread(svc.remove, request.params["id"])
        return empty_response(204)

    async def connect(request: Request) -> Response:
        body = await request.json(default={}) or {}
        c = engine.containers.get(body.get("Container") or "")
        cfg = endpoint_input(body.get("EndpointConfig") or {}, request.api_version)
        await asyncio.to_thread(svc.connect, request.params["id"], c, cfg, c.state.running)
        return empty_response(200)

    async def disconnect(request: Request) -> Response:
        body = await request.json(default={}) or {}
        c = engine.containers.get(body.get("Container") or "")
        await asyncio.to_thread(svc.disconnect, request.params["id"], c, bool(body.get("Force")))
        return empty_response(200)

    async def prune(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), PRUNE_FILTERS)
        until_ns = flt.parse_timestamp(wanted["until"][-1], "until") if wanted.get("until") else None

        def keep(n: Network) -> bool:
            if until_ns is not None and parse_iso(n.created) * 1e9 >= until_ns:
                return True
            if wanted.get("label") and not flt.match_labels(n.labels, wanted["label"]):
                return True
            return bool(wanted.get("label!")) and any(flt.match_labels(n.labels, [x]) for x in wanted["label!"])

        deleted = await asyncio.to_thread(svc.prune, keep)
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


def _matches(n: Network, wanted: dict[str, list[str]]) -> bool:
    if wanted.get("driver") and n.driver not in wanted["driver"]:
        return False
    if wanted.get("id") and not any(n.id.startswith(v) for v in wanted["id"]):
        return False
    if wanted.get("name") and not any(v in n.name for v in wanted["name"]):
        return False
    if wanted.get("scope") and n.scope not in wanted["scope"]:
        return False
    if wanted.get("type"):
        kind = "builtin" if n.predefined else "custom"
        if kind not in wanted["type"]:
            return False
    if wanted.get("label") and not flt.match_labels(n.labels, wanted["label"]):
        return False
    dangling = flt.bool_value(wanted.get("dangling", []), "dangling")
    if dangling is not None:
        # dockerd: dangling = custom network with no container attached
        is_dangling = not n.predefined and not n.endpoints
        if dangling != is_dangling:
            return False
    return True


def shape(engine: Engine, n: Network, containers: bool) -> dict[str, Any]:
    """A network as dockerd's NetworkResource (list and inspect)."""
    ipam_config: list[dict[str, str]] = []
    if n.subnet:
        entry = {"Subnet": n.subnet, "Gateway": n.gateway}
        if n.ip_range:
            entry["IPRange"] = n.ip_range
        ipam_config.append(entry)
    if n.subnet6:
        ipam_config.append({"Subnet": n.subnet6, **({"Gateway": n.gateway6} if n.gateway6_given else {})})
    out: dict[str, Any] = {
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": n.scope, "Driver": n.driver,
        "EnableIPv4": True, "EnableIPv6": bool(n.subnet6),
        "IPAM": {"Driver": "default", "Options": n.ipam_options or None, "Config": ipam_config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
        "Options": dict(n.options), "Labels": dict(n.labels)}
    if containers:
        for cid, ep in list(n.endpoints.items()):
            if not ep.address:
                continue
            out["Containers"][cid] = {"Name": ep.name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
                                      "IPv4Address": str(ipaddress.ip_interface(ep.address)),
                                      "IPv6Address": str(ipaddress.ip_interface(ep.address6)) if ep.address6 else ""}
    return out
