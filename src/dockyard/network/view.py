"""What dockerd shows of networks: the NetworkResource of list and inspect, the list filters and the
prune selection."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Callable

from .. import errors
from ..util import filters as flt
from ..util.timefmt import parse_seconds
from .records import Network

LIST_FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})
PRUNE_FILTERS = frozenset({"until", "label", "label!"})
log = logging.getLogger("dockyard.network")


def check_list_filters(wanted: dict[str, list[str]]) -> None:
    for t in wanted.get("type", []):
        if t not in ("custom", "builtin"):
            raise errors.InvalidParameter(f"invalid filter: 'type'='{t}'")


def matches(n: Network, wanted: dict[str, list[str]]) -> bool:
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


def prune_keep(wanted: dict[str, list[str]]) -> Callable[[Network], bool]:
    """Which unused networks `network prune` leaves."""
    selector = flt.LabelSelector.of(wanted)
    return lambda n: not selector.selects(n.labels, parse_seconds(n.created) * 1e9)


def resource(n: Network, containers: bool) -> dict[str, Any]:
    """A network as dockerd's NetworkResource (``containers``: with its endpoints, as inspect)."""
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
