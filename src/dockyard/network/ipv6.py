"""IPv6 on bridge networks: an explicit subnet (or the daemon's fixed-cidr-v6 for the default bridge), the
gateway on the bridge, an address and a default route per container. The ip6tables rules (with the daemon's
ip6tables option) are in iptables.py."""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .. import errors
from . import ipam, netns

AF_INET6 = 10
IFA_F_NODAD = 0x02  # the address is usable at once, not "tentative" while duplicate detection runs


def config(ipam_configs: list[dict[str, Any]], pools: list[dict[str, Any]],
           taken: list[ipaddress.IPv6Network]) -> tuple[str, str, bool]:
    """(subnet, gateway, gateway shown) of the first IPv6 entry of an IPAM Config, else of a subnet from the IPv6
    entries of default-address-pools (dockerd shows the gateway of such a one in IPAM Config)."""
    entries = [c for c in ipam_configs if ":" in str(c.get("Subnet") or "")]
    if not entries:
        chosen = ipam.choose_subnet6(pools, taken)
        if chosen is None:  # dockerd 20.10 has no IPv6 pool but those (fixed-cidr-v6 is the default bridge's only)
            raise errors.NotFound("could not find an available, non-overlapping IPv6 address pool among the "
                                  "defaults to assign to the network")
        return str(chosen), str(chosen.network_address + 1), True
    try:
        subnet = ipaddress.IPv6Network(entries[0]["Subnet"], strict=False)
    except ValueError:
        raise errors.InvalidParameter(f"invalid subnet {entries[0]['Subnet']}") from None
    if entries[0].get("Gateway"):
        try:
            gateway = ipaddress.IPv6Address(entries[0]["Gateway"])
        except ValueError:
            raise errors.InvalidParameter(f"invalid gateway address {entries[0]['Gateway']}") from None
        if gateway not in subnet:
            raise errors.InvalidParameter(
                f"invalid network config:\ninvalid gateway address {gateway}: it is not in subnet {subnet}")
    else:
        gateway = subnet.network_address + 1
    return str(subnet), str(gateway), bool(entries[0].get("Gateway"))


def default_bridge(fixed_cidr_v6: str) -> tuple[str, str]:
    """(subnet, gateway) of the default bridge from the daemon's fixed-cidr-v6 ("": no IPv6)."""
    if not fixed_cidr_v6:
        return "", ""
    subnet = ipaddress.IPv6Network(fixed_cidr_v6, strict=False)
    return str(subnet), str(subnet.network_address + 1)


def mac_derived(subnet: ipaddress.IPv6Network) -> bool:
    """dockerd makes a default-bridge container's address from its MAC when the subnet leaves 48 host bits."""
    return subnet.prefixlen <= 80


def address_from_mac(subnet: ipaddress.IPv6Network, mac: str) -> ipaddress.IPv6Address:
    """The subnet's prefix with the MAC in the last six bytes (02:42:ac:11:00:02 -> PREFIX::242:ac11:2)."""
    raw = bytearray(subnet.network_address.packed)
    raw[10:] = bytes.fromhex(mac.replace(":", ""))
    return ipaddress.IPv6Address(bytes(raw))


def ensure_address(bridge: str, address: ipaddress.IPv6Interface) -> bool:
    """The gateway address on the bridge; True when it was added (and so is to be taken away)."""
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=bridge)[0]
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=AF_INET6)}
        if (str(address.ip), address.network.prefixlen) in have:
            return False
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
                 family=AF_INET6, flags=IFA_F_NODAD)
        return True


def remove_address(bridge: str, address: ipaddress.IPv6Interface) -> None:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        if found:
            try:
                ipr.addr("del", index=found[0], address=str(address.ip), prefixlen=address.network.prefixlen,
                         family=AF_INET6)
            except NetlinkError as e:
                if e.code != errno.EADDRNOTAVAIL:
                    raise


def add_container_address(ns_path: str, ifname: str, address: ipaddress.IPv6Interface,
                          gateway: ipaddress.IPv6Address | None) -> None:
    with netns.entered(ns_path):
        ipr = IPRoute()
    with ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
                 family=AF_INET6, flags=IFA_F_NODAD)
        if gateway is not None:
            try:
                ipr.route("add", dst="::/0", gateway=str(gateway), family=AF_INET6)
            except NetlinkError as e:
                if e.code != errno.EEXIST:  # another network already gives the default route
                    raise
