"""Address management: subnets from the default pools clear of the host's routes, addresses in a subnet."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from .. import errors

IPv4Net = ipaddress.IPv4Network


def default_pools() -> list[dict[str, Any]]:
    """dockerd's: 172.17-31.0.0/16 each, then 192.168.0.0/16 in /20s."""
    return [{"base": "172.17.0.0/16", "size": 16}, {"base": "172.18.0.0/15", "size": 16},
            {"base": "172.20.0.0/14", "size": 16}, {"base": "172.24.0.0/14", "size": 16},
            {"base": "172.28.0.0/14", "size": 16}, {"base": "192.168.0.0/16", "size": 20}]


def choose_subnet(pools: list[dict[str, Any]], taken: Iterable[IPv4Net]) -> IPv4Net:
    taken = list(taken)
    for pool in pools or default_pools():
        base = ipaddress.ip_network(pool["base"])
        if base.version != 4:
            continue
        for candidate in base.subnets(new_prefix=int(pool["size"])):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
    raise errors.Forbidden("all predefined address pools have been fully subnetted")


def choose_subnet6(pools: list[dict[str, Any]], taken: Iterable[ipaddress.IPv6Network]) -> ipaddress.IPv6Network | None:
    """The first free subnet of the IPv6 entries of default-address-pools (dockerd has no IPv6 pool of its own)."""
    taken = list(taken)
    for pool in pools:
        base = ipaddress.ip_network(pool["base"])
        if base.version != 6:
            continue
        for candidate in base.subnets(new_prefix=int(pool["size"])):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
    return None


def gateway_for(subnet: IPv4Net) -> ipaddress.IPv4Address:
    return subnet.network_address + 1


def allocate(subnet: IPv4Net, ip_range: IPv4Net | None, used: set[ipaddress.IPv4Address],
             wanted: str = "") -> ipaddress.IPv4Address:
    """``wanted`` (--ip) if it is free, else the lowest free address of the range."""
    if wanted:
        addr = ipaddress.ip_address(wanted)
        if addr not in subnet:
            raise errors.InvalidParameter(f"no configured subnet or ip-range contain the IP address {wanted}")
        if addr in used:
            raise errors.Forbidden("Address already in use")
        return addr
    for host in ip_range or subnet:
        if host not in used and host not in (subnet.network_address, subnet.broadcast_address):
            return host
    raise errors.Forbidden(f"no available IPv4 addresses on this network's address pools: ({subnet})")
