"""Networks through docker-py and the CLI, side by side with the reference dockerd (issue 15, Networks)."""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any

import docker
import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd
# each engine gets its own subnet: both bridges live on this host, and their routes must not overlap
SUBNETS = {"ours": "10.231.7.0/24", "theirs": "10.232.7.0/24"}
MAC = "02:42:ac:11:99:07"


REF_BRIDGE = True  # the reference dockerd gets a bridge of its own (conftest's ref fixture)


def _engines(d, ref) -> list[tuple[str, Any]]:
    return [("ours", d), ("theirs", ref)]


def _user_network(api: docker.APIClient, name: str, subnet: str) -> str:
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    return api.create_network(name, driver="bridge", ipam=ipam)["Id"]


def _host(subnet: str, last: int) -> str:
    return subnet.rsplit(".", 1)[0] + f".{last}"


def _endpoint_view(ep: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as asked for, without what each engine picks itself (IDs, and addresses where not asked)."""
    keep = ("IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "IPAddress", "IPPrefixLen")
    return {k: ep.get(k) for k in keep}


def _run_endpoint_config(name: str, d, ref) -> dict[str, Any]:
    """Create, start and inspect a container with docker-py's networking_config on both engines."""
    results = {}
    for side, e in _engines(d, ref):
        api = api_of(e)
        subnet = SUBNETS[side]
        net = f"{name}-net"
        try:
            _user_network(api, net, subnet)
            e.cli("run", "-d", "--name", f"{name}-target", "--network", net, "busybox", "sleep", "60")
            endpoint = api.create_endpoint_config(
                aliases=["svc"], ipv4_address=_host(subnet, 40), link_local_ips=["169.254.10.10"],
                links={f"{name}-target": "buddy"}, driver_opt={"com.example.opt": "1"})
            c = api.create_container("busybox", ["sleep", "60"], name=f"{name}-c", mac_address=MAC,
                                     host_config=api.create_host_config(network_mode=net),
                                     networking_config=api.create_networking_config({net: endpoint}))
            api.start(c["Id"])
            info = api.inspect_container(c["Id"])
            ip_link = e.cli("exec", f"{name}-c", "cat", "/sys/class/net/eth0/address").stdout_text.strip()
            lookup = e.cli("exec", f"{name}-c", "nslookup", "buddy", "127.0.0.11", check=False)
            target_ip = api.inspect_container(f"{name}-target")["NetworkSettings"]["Networks"][net]["IPAddress"]
            endpoint_view = _endpoint_view(info["NetworkSettings"]["Networks"][net])
            # API 1.41 adds the short ID to the aliases (CHANGELOG v1.45): each engine's own ID
            endpoint_view["Aliases"] = ["SHORT-ID" if a == c["Id"][:12] else a for a in endpoint_view["Aliases"]]
            results[side] = {"endpoint": endpoint_view,
                             "iface_mac": ip_link, "config_mac": info["Config"].get("MacAddress"),
                             "buddy_resolves": lookup.returncode == 0 and target_ip in lookup.stdout_text,
                             "subnet": subnet}
        finally:
            cleanup(e, f"{name}-c", f"{name}-target")
            e.cli("network", "rm", net, check=False)
    return results


def test_networking_config_endpoint_as_dockerd(d, ref) -> None:
    got = _run_endpoint_config("epcfg", d, ref)
    for side in got:
        subnet = got[side].pop("subnet")
        ep = got[side]["endpoint"]
        assert ep["IPAddress"] == _host(subnet, 40), side
        ep["IPAMConfig"]["IPv4Address"] = ep["IPAddress"] = "ADDR"
    assert got["ours"] == got["theirs"]
    assert got["ours"]["endpoint"]["MacAddress"] == MAC and got["ours"]["iface_mac"] == MAC
    assert got["ours"]["endpoint"]["DriverOpts"] == {"com.example.opt": "1"}
    assert got["ours"]["endpoint"]["IPAMConfig"]["LinkLocalIPs"] == ["169.254.10.10"]
    assert got["ours"]["endpoint"]["Aliases"] == ["svc", "SHORT-ID"]
    assert got["ours"]["buddy_resolves"]


def _derived_mac(ip: str) -> str:
    return "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))


def test_connect_with_links_as_dockerd(d, ref) -> None:
    """Links on connect; a MacAddress there is not an input before API 1.44 (dockerd 20.10 ignores it)."""
    got = {}
    for side, e in _engines(d, ref):
        api = api_of(e)
        net = "conn-net"
        try:
            _user_network(api, net, SUBNETS[side])
            e.cli("run", "-d", "--name", "conn-target", "--network", net, "busybox", "sleep", "60")
            e.cli("run", "-d", "--name", "conn-c", "busybox", "sleep", "60")
            status, _ = outcome(lambda: api.connect_container_to_network(
                "conn-c", net, links=[("conn-target", "pal")], mac_address=MAC))
            info = api.inspect_container("conn-c")["NetworkSettings"]["Networks"][net]
            mac = e.cli("exec", "conn-c", "cat", "/sys/class/net/eth1/address").stdout_text.strip()
            lookup = e.cli("exec", "conn-c", "nslookup", "pal", "127.0.0.11", check=False)
            target_ip = api.inspect_container("conn-target")["NetworkSettings"]["Networks"][net]["IPAddress"]
            derived = _derived_mac(info["IPAddress"])
            got[side] = (status, info["Links"], info["MacAddress"] == derived, mac == derived,
                         lookup.returncode == 0 and target_ip in lookup.stdout_text)
        finally:
            cleanup(e, "conn-c", "conn-target")
            e.cli("network", "rm", net, check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"] == (200, ["conn-target:pal"], True, True, True)


def test_connect_mac_address_from_api_1_44(d) -> None:
    api = api_of(d, "1.44")
    try:
        _user_network(api, "mac44-net", SUBNETS["ours"])
        d.cli("run", "-d", "--name", "mac44-c", "busybox", "sleep", "60")
        api.connect_container_to_network("mac44-c", "mac44-net", mac_address=MAC)
        info = api.inspect_container("mac44-c")["NetworkSettings"]["Networks"]["mac44-net"]
        assert info["MacAddress"] == MAC
        assert d.cli("exec", "mac44-c", "cat", "/sys/class/net/eth1/address").stdout_text.strip() == MAC
    finally:
        cleanup(d, "mac44-c")
        d.cli("network", "rm", "mac44-net", check=False)


def _strip_ids(result: tuple[int, Any]) -> tuple[int, Any]:
    status, body = result
    return (status, {"Id": "ID", "Warning": body["Warning"]}) if status == 200 and "Id" in body else result


def test_create_options_as_dockerd(d, ref) -> None:
    """Scope, ingress, attachable, internal, labels, spaces, duplicates: status, wording and what inspect shows."""
    got = {}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("sp ace", {}), ("sc-swarm", {"scope": "swarm"}), ("sc-global", {"scope": "global"}),
        ("sc-bogus", {"scope": "bogus"}), ("ing", {"ingress": True}),
        ("ing-swarm", {"ingress": True, "scope": "swarm"}), ("ing-global", {"ingress": True, "scope": "global"}),
        ("bridge", {}), ("host", {"check_duplicate": True}), ("none", {"driver": "null"})]
    for side, e in _engines(d, ref):
        api = api_of(e)
        try:
            answers = {name: _strip_ids(outcome(lambda: api.create_network(name, **kw))) for name, kw in cases}
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNETS[side])])
            created = _strip_ids(outcome(lambda: api.create_network(
                "opts-net", scope="local", attachable=True, internal=True, labels={"a": "1"}, ipam=ipam)))
            info = api.inspect_network("opts-net")
            shown = {k: info[k] for k in ("Name", "Scope", "Attachable", "Internal", "Ingress", "Labels",
                                         "Options", "EnableIPv6", "ConfigOnly", "ConfigFrom")}
            duplicate = outcome(lambda: api.create_network("opts-net", check_duplicate=True))
            names = sorted(n["Name"] for n in api.networks())
            got[side] = (answers, created, shown, duplicate, names)
        finally:
            for name in ("sp ace", "opts-net", *(n for n, _ in cases if n not in ("bridge", "host", "none"))):
                e.cli("network", "rm", name, check=False)
    # dockerd answers 500 to a cluster scope on a node outside a swarm; dockyard 400, with the same words
    not_manager = ("sc-global", "sc-bogus")
    for name in not_manager:
        assert got["theirs"][0][name][0] == 500 and got["ours"][0][name] == (400, got["theirs"][0][name][1])
        got["ours"][0][name] = got["theirs"][0][name]
    assert got["ours"] == got["theirs"]
    answers, _, shown, duplicate, names = got["ours"]
    assert answers["sc-swarm"][0] == 403 and answers["ing"][0] == 403
    assert shown["Internal"] and shown["Attachable"] and shown["Labels"] == {"a": "1"}
    assert duplicate == (409, "network with name opts-net already exists")
    assert "sp ace" in names


def test_remove_and_prune_as_dockerd(d, ref) -> None:
    got = {}
    for side, e in _engines(d, ref):
        api = api_of(e)
        try:
            net_id = _user_network(api, "rm-net", SUBNETS[side])
            e.cli("run", "-d", "--name", "rm-c", "--network", "rm-net", "busybox", "sleep", "60")
            status, message = outcome(lambda: api.remove_network("rm-net"))
            busy = (status, message.replace(net_id, "ID"))
            gone = [outcome(lambda: api.remove_network(ref_)) for ref_ in ("no-such-net", "bridge", "host", "none")]
            cleanup(e, "rm-c")
            api.remove_network(net_id)
            api.create_network("pr-1", labels={"k": "v"})
            api.create_network("pr-2", labels={"k": "w"})
            api.create_network("pr-3")
            pruned = [outcome(lambda: api.prune_networks(filters=f)) for f in
                      ({"until": "1h"}, {"label": ["k=v"]}, {"label!": ["k"]}, {"until": "2000-01-01T00:00:00Z"},
                       {})]
            got[side] = (busy, gone, pruned)
        finally:
            cleanup(e, "rm-c")
            for name in ("rm-net", "pr-1", "pr-2", "pr-3"):
                e.cli("network", "rm", name, check=False)
    assert got["ours"] == got["theirs"]
    busy, _, pruned = got["ours"]
    assert busy == (403, "error while removing network: network rm-net id ID has active endpoints")
    assert [p[1]["NetworksDeleted"] for p in pruned] == [None, ["pr-1"], ["pr-3"], None, ["pr-2"]]


@pytest.fixture
def host_route():
    """A route of the host's own (a bridge device of its own, 10.233.0.0/16) for explicit subnets to overlap."""
    subprocess.run(["ip", "link", "add", "dyovl0", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.233.0.1/16", "dev", "dyovl0"], check=True)
        subprocess.run(["ip", "link", "set", "dyovl0", "up"], check=True)
        yield "10.233.0.0/16"
    finally:
        subprocess.run(["ip", "link", "del", "dyovl0"], check=False)


# inside the route, and the route's own subnet (its gateway the host's address): one engine at a time
@pytest.mark.parametrize("subnets", [("10.233.5.0/24", "10.233.6.0/24"), ("10.233.0.0/16", "10.233.0.0/16")])
def test_explicit_subnet_over_a_host_route_as_dockerd(d, ref, host_route, subnets) -> None:
    """dockerd takes an explicit subnet as given; only its own choice of a pool avoids the host's routes."""
    got = {}
    for side, e, subnet in (("ours", d, subnets[0]), ("theirs", ref, subnets[1])):
        api = api_of(e)
        try:
            created = _strip_ids(outcome(lambda: _user_network_answer(api, "ovl-net", subnet)))
            shown = api.inspect_network("ovl-net")["IPAM"]["Config"] if created[0] == 200 else None
            ip = ""
            if created[0] == 200:
                e.cli("run", "-d", "--name", "ovl-c", "--network", "ovl-net", "busybox", "sleep", "60")
                ip = api.inspect_container("ovl-c")["NetworkSettings"]["Networks"]["ovl-net"]["IPAddress"]
            got[side] = (created, [{**c, "Subnet": "S", "Gateway": "G"} for c in shown or []],
                         ip == _host(subnet, 2))
        finally:
            cleanup(e, "ovl-c")
            e.cli("network", "rm", "ovl-net", check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"][0][0] == 200 and got["ours"][2]
    # an automatic choice still stays clear of the host's route
    try:
        auto = api_of(d).create_network("ovl-auto")["Id"]
        subnet = ipaddress.ip_network(api_of(d).inspect_network(auto)["IPAM"]["Config"][0]["Subnet"])
        assert not subnet.overlaps(ipaddress.ip_network(host_route))
    finally:
        d.cli("network", "rm", "ovl-auto", check=False)


def _user_network_answer(api: docker.APIClient, name: str, subnet: str) -> dict[str, Any]:
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    return api.create_network(name, driver="bridge", ipam=ipam)


def test_embedded_dns_names_as_dockerd(d, ref) -> None:
    """The embedded DNS answers a container's hostname (to itself and to the others) and name.network."""
    got = {}
    queries = [("dns-a", "myhost"), ("dns-b", "myhost"), ("dns-b", "dns-a.dns-net"), ("dns-b", "dns-a"),
               ("dns-b", "nobody.dns-net")]
    for side, e in _engines(d, ref):
        api = api_of(e)
        try:
            _user_network(api, "dns-net", SUBNETS[side])
            e.cli("run", "-d", "--name", "dns-a", "-h", "myhost", "--network", "dns-net", "busybox", "sleep", "60")
            e.cli("run", "-d", "--name", "dns-b", "--network", "dns-net", "busybox", "sleep", "60")
            ip = api.inspect_container("dns-a")["NetworkSettings"]["Networks"]["dns-net"]["IPAddress"]
            answers = []
            for who, name in queries:
                res = e.cli("exec", who, "nslookup", name, "127.0.0.11", check=False)
                answers.append(res.returncode == 0 and f"Address: {ip}" in res.stdout_text)
            got[side] = answers
        finally:
            cleanup(e, "dns-a", "dns-b")
            e.cli("network", "rm", "dns-net", check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"] == [True, True, True, True, False]


def _ipv6_network(api: docker.APIClient, name: str, subnet: str, subnet6: str) -> str:
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet),
                                                 docker.types.IPAMPool(subnet=subnet6)])
    return api.create_network(name, driver="bridge", ipam=ipam, enable_ipv6=True)["Id"]


def test_ipv6_network_addresses_as_dockerd(d, ref) -> None:
    """EnableIPv6 with an explicit subnet: the gateway, a container's address (--ip6 too), inspect, reachability."""
    got = {}
    subnets6 = {"ours": "fd00:dead:1::/64", "theirs": "fd00:dead:2::/64"}
    for side, e in _engines(d, ref):
        api = api_of(e)
        subnet6 = subnets6[side]
        prefix = subnet6.split("::")[0]
        try:
            _ipv6_network(api, "v6-net", SUBNETS[side], subnet6)
            net = api.inspect_network("v6-net")
            e.cli("run", "-d", "--name", "v6-a", "--network", "v6-net", "busybox", "sleep", "60")
            e.cli("run", "-d", "--name", "v6-b", "--network", "v6-net", "--ip6", f"{prefix}::99", "busybox",
                  "sleep", "60")
            e.cli("run", "-d", "--name", "v6-c", "busybox", "sleep", "60")
            e.cli("network", "connect", "--ip6", f"{prefix}::77", "v6-net", "v6-c")
            eps = {c: api.inspect_container(c)["NetworkSettings"]["Networks"]["v6-net"]
                   for c in ("v6-a", "v6-b", "v6-c")}
            listed = api.inspect_network("v6-net")["Containers"]
            inside = e.cli("exec", "v6-b", "ip", "-6", "addr", "show", "eth0").stdout_text
            ping = e.cli("exec", "v6-a", "ping", "-6", "-c1", "-W3", f"{prefix}::99", check=False)
            got[side] = {
                "EnableIPv6": net["EnableIPv6"],
                "Config": [c["Subnet"].replace(prefix, "P") for c in net["IPAM"]["Config"] if ":" in c["Subnet"]],
                "Gateway6": [c.get("Gateway", "").replace(prefix, "P") for c in net["IPAM"]["Config"]
                             if ":" in c["Subnet"]],
                "a": (eps["v6-a"]["GlobalIPv6Address"].replace(prefix, "P"), eps["v6-a"]["GlobalIPv6PrefixLen"],
                      eps["v6-a"]["IPv6Gateway"].replace(prefix, "P")),
                "b": (eps["v6-b"]["GlobalIPv6Address"].replace(prefix, "P"),
                      eps["v6-b"]["IPAMConfig"]["IPv6Address"].replace(prefix, "P")),
                "connected": eps["v6-c"]["GlobalIPv6Address"].replace(prefix, "P"),
                "listed": sorted(c["IPv6Address"].replace(prefix, "P") for c in listed.values()),
                "inside": f"{prefix}::99/64" in inside, "ping": ping.returncode == 0}
        finally:
            cleanup(e, "v6-a", "v6-b", "v6-c")
            e.cli("network", "rm", "v6-net", check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"]["b"] == ("P::99", "P::99") and got["ours"]["inside"] and got["ours"]["ping"]
    assert got["ours"]["a"] == ("P::2", 64, "P::1") and got["ours"]["connected"] == "P::77"


def test_ipv6_without_a_subnet_refused(d) -> None:
    status, message = outcome(lambda: api_of(d).create_network("v6-nosub", enable_ipv6=True))
    d.cli("network", "rm", "v6-nosub", check=False)
    assert status == 404 and "non-overlapping IPv6 address pool" in message  # dockerd 20.10's (no IPv6 pool)
