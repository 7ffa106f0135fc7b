"""Links, addresses and routes over netlink (pyroute2): bridges, veth pairs, a container's interfaces."""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
from typing import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns


def _ipr() -> IPRoute:
    return IPRoute()


def link_index(name: str) -> int | None:
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        return found[0] if found else None


class NotABridge(Exception):
    pass


def ensure_bridge(name: str, gateway: ipaddress.IPv4Interface, route_localnet: bool,
                  mtu: int = 1500) -> tuple[bool, bool]:
    """The bridge up with its gateway address; an existing bridge is adopted as it is.

    Returns (created the bridge, added the address), so that only what was added is taken away.
    Any other existing interface is refused: adopting it would give it an address and enslave veths
    to it (and ``eth0`` would cut the host off).
    """
    created = added = False
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
                created = True
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
            found = ipr.link_lookup(ifname=name)
        index = found[0]
        info = ipr.get_links(index)[0].get_attr("IFLA_LINKINFO")
        if not info or info.get_attr("IFLA_INFO_KIND") != "bridge":
            raise NotABridge(f"existing interface {name} is not a bridge")
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            ipr.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
            added = True
        ipr.link("set", index=index, state="up")
    # 1 only without the userland proxy (DNAT of the host's loopback traffic leaves with a loopback
    # source); written either way, so a bridge an older daemon left at 1 is closed again
    set_route_localnet(name, route_localnet)
    return created, added


def remove_address(name: str, address: ipaddress.IPv4Interface) -> None:
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            try:
                ipr.addr("del", index=found[0], address=str(address.ip), prefixlen=address.network.prefixlen)
            except NetlinkError as e:
                if e.code != errno.EADDRNOTAVAIL:
                    raise


def set_route_localnet(name: str, on: bool) -> None:
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1" if on else "0")


def bridge_ports(name: str) -> list[str]:
    """The interfaces enslaved to a bridge (a daemon's veths, or another's sharing the bridge)."""
    try:
        return os.listdir(f"/sys/class/net/{name}/brif")
    except OSError:
        return []


def delete_link(name: str) -> None:
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            try:
                ipr.link("del", index=found[0])
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise


def host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route destination and interface network on the host, to keep clear of."""
    nets = []
    with _ipr() as ipr:
        for r in ipr.get_routes(family=2, table=254):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                nets.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
        for a in ipr.get_addr(family=2):
            addr = a.get_attr("IFA_ADDRESS")
            if addr and not addr.startswith("127."):
                nets.append(ipaddress.ip_network(f"{addr}/{a['prefixlen']}", strict=False))
    return nets


def bridges() -> Iterator[str]:
    with _ipr() as ipr:
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            if info and info.get_attr("IFLA_INFO_KIND") == "bridge":
                yield link.get_attr("IFLA_IFNAME")


def mac_for(ip: ipaddress.IPv4Address) -> str:
    """dockerd's scheme: 02:42 then the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def add_interface(ns_path: str, bridge: str, ifname: str, address: ipaddress.IPv4Interface,
                  gateway: ipaddress.IPv4Address | None, mtu: int = 1500, mac: str = "") -> str:
    """A veth pair: the host end on ``bridge``, the other as ``ifname`` in the namespace. Returns the host end."""
    host_end = "veth" + secrets.token_hex(4)[:7]
    fd = os.open(ns_path, os.O_RDONLY)
    try:
        with _ipr() as ipr:
            master = ipr.link_lookup(ifname=bridge)
            if not master:
                raise OSError(errno.ENODEV, f"bridge {bridge} is missing")
            ipr.link("add", ifname=host_end, kind="veth", mtu=mtu,
                     peer={"ifname": ifname, "net_ns_fd": fd, "address": mac or mac_for(address.ip), "mtu": mtu})
            index = ipr.link_lookup(ifname=host_end)[0]
            ipr.link("set", index=index, master=master[0], state="up")
    finally:
        os.close(fd)
    try:
        with netns.entered(ns_path):
            ipr = _ipr()
        with ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            ipr.link("set", index=lo, state="up")
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
            ipr.link("set", index=index, state="up")
            if gateway is not None:
                try:
                    ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway))
                except NetlinkError as e:
                    if e.code != errno.EEXIST:  # another network already gives the default route
                        raise
    except BaseException:
        delete_link(host_end)
        raise
    return host_end


def remove_interface(ns_path: str, ifname: str, host_end: str) -> None:
    """Deleting either end of a veth pair deletes both."""
    if host_end and link_index(host_end) is not None:
        delete_link(host_end)
        return
    if ns_path and netns.exists(ns_path):
        with netns.entered(ns_path):
            ipr = _ipr()
        with ipr:
            found = ipr.link_lookup(ifname=ifname)
            if found:
                ipr.link("del", index=found[0])


def loopback_up(ns_path: str) -> None:
    with netns.entered(ns_path):
        ipr = _ipr()
    with ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(value)
    except OSError:
        pass
