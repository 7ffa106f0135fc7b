"""A container's endpoint on a network: what create and connect ask for, and how inspect shows it."""

from __future__ import annotations

import ipaddress
from typing import Any

from .. import errors
from .records import Endpoint, Network


def from_config(n: Network, container_id: str, name: str, cfg: dict[str, Any], hostname: str) -> Endpoint:
    """The endpoint a create or connect asks for, checked against the network."""
    ipam_cfg = cfg.get("IPAMConfig") or {}
    static = ipam_cfg.get("IPv4Address") or ""
    static6 = ipam_cfg.get("IPv6Address") or ""
    if static6:
        if not n.subnet6:
            raise errors.InvalidParameter(f"invalid address {static6}: It does not belong to any of this "
                                          f"network's subnets")
        try:
            addr6 = ipaddress.IPv6Address(static6)
        except ValueError:
            raise errors.InvalidParameter(f"invalid IPv6 address: {static6}") from None
        if addr6 not in ipaddress.ip_network(n.subnet6):
            raise errors.InvalidParameter(
                f"invalid address {static6}: It does not belong to any of this network's subnets")
    aliases = list(cfg.get("Aliases") or [])
    mac = cfg.get("MacAddress") or ""  # its form is checked with the request (api/validation.py)
    wanted_links = [str(x) for x in cfg.get("Links") or []]
    if (static or aliases) and not n.user_defined:
        raise errors.InvalidParameter(
            "user specified IP address is supported on user defined networks only" if static else
            "network-scoped alias is supported only for containers in user defined networks")
    if static:
        try:
            addr = ipaddress.ip_address(static)
        except ValueError:
            raise errors.InvalidParameter(f"invalid IPv4 address: {static}") from None
        if addr not in ipaddress.ip_network(n.subnet) or (n.ip_range and addr not in ipaddress.ip_network(n.ip_range)):
            raise errors.InvalidParameter(
                f"invalid address {static}: It does not belong to any of this network's subnets")
    return Endpoint(container_id=container_id, name=name.lstrip("/"), aliases=aliases, static_ip=static,
                    link_local_ips=[str(x) for x in ipam_cfg.get("LinkLocalIPs") or []],
                    driver_opts={str(k): str(v) for k, v in (cfg.get("DriverOpts") or {}).items()},
                    links=wanted_links, mac_wanted=mac.lower(), hostname=hostname, static_ip6=static6)


def check_scope(body: dict[str, Any]) -> None:
    """dockerd's answers on a node outside a swarm: only local networks, and no ingress."""
    scope = body.get("Scope") or "local"
    if body.get("Ingress"):  # the bridge driver's networks are local, whatever Scope asks
        raise errors.Forbidden("Ingress network can only be global scope network")
    if scope == "swarm":
        raise errors.Forbidden("cannot create a swarm scoped network when swarm is not active")
    if scope != "local":  # any other scope goes to the cluster, which this node is not part of
        # dockerd answers 500; a request this node cannot serve is bad input here (never a 5xx), same words
        raise errors.InvalidParameter("This node is not a swarm manager. Use \"docker swarm init\" or "
                                  "\"docker swarm join\" to connect this node to swarm and try again.")


def settings(n: Network, ep: Endpoint | None, container_id: str) -> dict[str, Any]:
    live = bool(ep and ep.address)
    iface = ipaddress.ip_interface(ep.address) if ep and ep.address else None
    names = [ep.name, container_id[:12], *ep.aliases] if ep and n.user_defined else None
    ipam_cfg: dict[str, Any] = {}
    if ep and ep.static_ip:
        ipam_cfg["IPv4Address"] = ep.static_ip
    if ep and ep.static_ip6:
        ipam_cfg["IPv6Address"] = ep.static_ip6
    iface6 = ipaddress.ip_interface(ep.address6) if ep and ep.address6 else None
    if ep and ep.link_local_ips:
        ipam_cfg["LinkLocalIPs"] = list(ep.link_local_ips)
    return {"IPAMConfig": ipam_cfg or None, "Links": (ep.links or None) if ep else None,
            "Aliases": (ep.aliases or None) if ep else None, "MacAddress": ep.mac if ep else "",
            "DriverOpts": (ep.driver_opts or None) if ep else None, "GwPriority": 0, "NetworkID": n.id,
            "EndpointID": ep.endpoint_id if ep else "",
            "Gateway": n.gateway if live else "", "IPAddress": str(iface.ip) if iface else "",
            "IPPrefixLen": iface.network.prefixlen if iface else 0,
            "IPv6Gateway": n.gateway6 if iface6 else "", "GlobalIPv6Address": str(iface6.ip) if iface6 else "",
            "GlobalIPv6PrefixLen": iface6.network.prefixlen if iface6 else 0, "DNSNames": names}


def link_aliases(wanted: list[str]) -> dict[str, set[str]]:
    """Target container name -> the aliases this container's links give it (``name:alias``)."""
    out: dict[str, set[str]] = {}
    for link in wanted:
        target, _, alias = link.partition(":")
        out.setdefault(target.lstrip("/").lower(), set()).add((alias or target).lstrip("/").lower())
    return out


def free_ifname(members: list[tuple[Network, Endpoint]]) -> str:
    used = {ep.ifname for _, ep in members if ep.ifname}
    i = 0
    while f"eth{i}" in used:
        i += 1
    return f"eth{i}"
