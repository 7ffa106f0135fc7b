"""IPv6 (issue 15, Networks): the daemon's ipv6/fixed-cidr-v6/ip6tables, the default bridge's IPv6, ip6tables
NAT and forwarding, ports published on [::], AAAA answers; side by side with the reference dockerd where it
can show the same (it runs with --ip6tables=false, so the ip6tables rules are dockyard's only).

Every address is a ULA inside namespaces and bridges the tests make (never a global one); each engine gets
subnets of its own, since both bridges live on this host.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import docker
import pytest

import refdocker
from conftest import make_daemon
from dockerd_side import api_of, cleanup, needs_dockerd, outcome
from dockyard.config import ConfigError
from dockyard.daemon import config as daemon_config
from dockyard.network import ipam
from test_network_outside import listener_in, outside_namespace

FIXED = {"ours": "fd00:dead:beef::/64", "theirs": "fd00:dead:bee2::/64"}  # each daemon's fixed-cidr-v6
NET6 = {"ours": "fd00:dead:bef1::/64", "theirs": "fd00:dead:bef2::/64"}
NET4 = {"ours": "10.231.61.0/24", "theirs": "10.232.61.0/24"}
V4ONLY = {"ours": "10.231.62.0/24", "theirs": "10.232.62.0/24"}
OUTSIDE_HOST, OUTSIDE_PEER = "fd00:dead:cafe::1", "fd00:dead:cafe::2"
CONTROLLER = "Error initializing network controller: "


# -- ip6tables bookkeeping: a daemon keeps its default bridge's rules across restarts (as dockerd keeps
# docker0's), so the tests take away what their daemons leave ----------------------------------------
def _ip6_rules() -> set[str]:
    out = set()
    for table in ("filter", "nat"):
        text = subprocess.run(["ip6tables-save", "-t", table], capture_output=True, text=True).stdout
        out |= {f"{table} {line[3:]}" for line in text.splitlines() if line.startswith("-A ")}
    return out


def _naming(word: str) -> set[str]:
    return {r for r in _ip6_rules() if word in r.split()}


def _drop_ip6(word: str) -> None:
    for rule in _naming(word):
        table, _, args = rule.partition(" ")
        subprocess.run(["ip6tables", "-t", table, "-D", *shlex.split(args)], capture_output=True)


def _drop_ip6_chains(before: set[str]) -> None:
    """The chains and jumps the daemon made, when they were not there before and nothing else is in them."""
    if any("DOCKYARD" in r for r in before):
        return
    left = _ip6_rules()
    jumps = {r for r in left if "DOCKYARD" in r and r.split()[-1].startswith("DOCKYARD")
             and (r.split()[1] in ("FORWARD", "PREROUTING", "OUTPUT", "POSTROUTING")
                  or r == "filter DOCKYARD-FORWARD -j DOCKYARD-ISOLATION-1")}
    if {r for r in left if "DOCKYARD" in r} != jumps:
        return  # another daemon's rules are in them
    for rule in jumps:
        table, _, args = rule.partition(" ")
        subprocess.run(["ip6tables", "-t", table, "-D", *shlex.split(args)], capture_output=True)
    for table, chains in (("filter", ("DOCKYARD-FORWARD", "DOCKYARD-ISOLATION-1", "DOCKYARD-ISOLATION-2")),
                          ("nat", ("DOCKYARD", "DOCKYARD-POSTROUTING"))):
        for chain in chains:
            subprocess.run(["ip6tables", "-t", table, "-X", chain], capture_output=True)


def _finish(d, before: set[str]) -> None:
    d.teardown()
    _drop_ip6(d.bridge_args()[1])
    _drop_ip6_chains(before)


@pytest.fixture(scope="module")
def d6(tmp_path_factory, busybox_tar):
    """dockyardd with IPv6 on its default bridge and ip6tables rules."""
    before = _ip6_rules()
    d = make_daemon(tmp_path_factory.mktemp("dy6"), ["--ipv6", "--fixed-cidr-v6", FIXED["ours"], "--ip6tables"])
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    yield d
    _finish(d, before)
    assert _ip6_rules() == before, "ip6tables rules left behind"


@pytest.fixture(scope="module")
def ref6(tmp_path_factory, busybox_tar):
    """The reference dockerd with IPv6 on its default bridge (a bridge of its own)."""
    # dockerd leaves the gateway it added on the bridge; finding it there at start, inspect shows it as given
    gateway = f"{_prefix(FIXED['theirs'])}::1/64"
    _del_address(refdocker.BRIDGE_NAME, gateway)
    r = refdocker.make_refdocker(tmp_path_factory.mktemp("ref6"), bridge=True)
    r.extra_args = ["--ipv6", "--fixed-cidr-v6", FIXED["theirs"]]
    r.start()
    r.cli("load", "-i", busybox_tar.path)
    yield r
    r.stop()
    _del_address(refdocker.BRIDGE_NAME, gateway)


def _del_address(ifname: str, address: str) -> None:
    subprocess.run(["ip", "-6", "addr", "del", address, "dev", ifname], capture_output=True)


def _engines(d, ref) -> list[tuple[str, Any]]:
    return [("ours", d), ("theirs", ref)]


def _prefix(subnet: str) -> str:
    return subnet.split("::")[0]


def _inspect(e, ref: str) -> dict[str, Any]:
    return json.loads(e.cli("inspect", ref).stdout_text)[0]


# -- the daemon's options -------------------------------------------------------------------------------
def test_options_from_flags_and_daemon_json(tmp_path: Path) -> None:
    c = daemon_config.load(["--config-file", str(_write(tmp_path, {})), "--ipv6", "--fixed-cidr-v6",
                            "fd00:dead:beef::/64", "--ip6tables"])
    assert (c.ipv6, c.fixed_cidr_v6, c.ip6tables) == (True, "fd00:dead:beef::/64", True)
    assert (c.network().ipv6, c.network().fixed_cidr_v6, c.network().ip6tables) == (True, "fd00:dead:beef::/64", True)
    c = daemon_config.load(["--config-file", str(_write(tmp_path, {"ipv6": True, "fixed-cidr-v6": "fd00:dead:beef::/64",
                                                                   "ip6tables": True}))])
    assert (c.ipv6, c.fixed_cidr_v6, c.ip6tables) == (True, "fd00:dead:beef::/64", True)
    defaults = daemon_config.load(["--config-file", str(_write(tmp_path, {}))])
    assert (defaults.ipv6, defaults.fixed_cidr_v6, defaults.ip6tables) == (False, "", False)  # dockerd 20.10's
    with pytest.raises(ConfigError, match="is not an IPv6 subnet"):
        daemon_config.load(["--config-file", str(_write(tmp_path, {})), "--ipv6", "--fixed-cidr-v6", "10.9.0.0/16"])
    with pytest.raises(ConfigError, match="ipv6: wrong type"):
        daemon_config.load(["--config-file", str(_write(tmp_path, {"ipv6": "yes"}))])


def _write(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(values))
    return path


@needs_dockerd
@pytest.mark.parametrize("args", [["--ipv6"], ["--ipv6", "--fixed-cidr-v6", "bogus"]],
                         ids=["ipv6-without-fixed-cidr-v6", "bad-cidr"])
def test_daemon_refuses_bad_ipv6_options_as_dockerd(tmp_path: Path, args: list[str]) -> None:
    words = {}
    (tmp_path / "ours").mkdir()
    d = make_daemon(tmp_path / "ours", args)
    try:
        with pytest.raises(RuntimeError) as ours:
            d.start()
    finally:
        d.stop()
        shutil.rmtree(os.path.dirname(d.socket), ignore_errors=True)
    base = Path(tempfile.mkdtemp(prefix="rd6-", dir="/tmp"))  # short: containerd's socket path goes under it
    try:
        r = refdocker.make_refdocker(base, bridge=True)
        r.extra_args = args
        with pytest.raises(RuntimeError) as theirs:
            r.start()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for side, text in (("ours", str(ours.value)), ("theirs", str(theirs.value))):
        line = next(ln for ln in text.splitlines() if CONTROLLER in ln)
        words[side] = line[line.index(CONTROLLER):].strip()
    assert words["ours"] == words["theirs"]


# -- the default bridge ---------------------------------------------------------------------------------
@needs_dockerd
def test_default_bridge_ipv6_as_dockerd(d6, ref6) -> None:
    """fixed-cidr-v6: the gateway on the bridge, an address made of the MAC, inspect, ports on [::] too."""
    got = {}
    for side, e in _engines(d6, ref6):
        p = _prefix(FIXED[side])
        try:
            e.cli("run", "-d", "--name", "b6", "-p", "80", "busybox", "sleep", "60")
            info = _inspect(e, "b6")
            s = info["NetworkSettings"]
            net = api_of(e).inspect_network("bridge")
            mac = s["MacAddress"]
            from_mac = ipaddress.IPv6Address(ipaddress.IPv6Network(FIXED[side]).network_address.packed[:10]
                                             + bytes.fromhex(mac.replace(":", "")))
            route = e.cli("exec", "b6", "ip", "-6", "route").stdout_text
            ping = e.cli("exec", "b6", "ping", "-6", "-c1", "-W3", f"{p}::1", check=False)
            hosts = e.cli("exec", "b6", "cat", "/etc/hosts").stdout_text.splitlines()
            ports = s["Ports"]["80/tcp"]
            got[side] = {
                "EnableIPv6": net["EnableIPv6"],
                "Config6": [{k: v.replace(p, "P") for k, v in c.items()} for c in net["IPAM"]["Config"]
                            if ":" in c["Subnet"]],
                "top": (s["GlobalIPv6Address"] == str(from_mac), s["GlobalIPv6PrefixLen"],
                        s["IPv6Gateway"].replace(p, "P")),
                "endpoint": (s["Networks"]["bridge"]["GlobalIPv6Address"] == s["GlobalIPv6Address"],
                             s["Networks"]["bridge"]["GlobalIPv6PrefixLen"],
                             s["Networks"]["bridge"]["IPv6Gateway"].replace(p, "P")),
                "route": f"default via {p}::1" in route, "ping": ping.returncode == 0,
                "hosts": hosts[-1] == f"{s['GlobalIPv6Address']}\t{info['Config']['Hostname']}",
                "ports": ([b["HostIp"] for b in ports], len({b["HostPort"] for b in ports})),
            }
        finally:
            cleanup(e, "b6")
    assert got["ours"] == got["theirs"]
    assert got["ours"]["top"] == (True, 64, "P::1") and got["ours"]["Config6"] == [{"Subnet": "P::/64"}]
    assert got["ours"]["ports"] == (["0.0.0.0", "::"], 1) and got["ours"]["ping"] and got["ours"]["hosts"]


def test_default_bridge_loses_ipv6_when_started_without_it(tmp_path, busybox_tar) -> None:
    before = _ip6_rules()
    d = make_daemon(tmp_path, ["--ipv6", "--fixed-cidr-v6", "fd00:dead:bee3::/64", "--ip6tables"])
    try:
        d.start()
        bridge = d.bridge_args()[1]
        assert "fd00:dead:bee3::1/64" in _addresses(bridge)
        assert _naming(bridge)
        d.extra_args = ["--ip6tables"]  # a daemon without it leaves ip6tables alone, as dockerd
        d.restart()
        assert "fd00:dead:bee3::1/64" not in _addresses(bridge)
        assert not _naming(bridge)
        net = d.api().inspect_network("bridge")
        assert not net["EnableIPv6"] and all(":" not in c["Subnet"] for c in net["IPAM"]["Config"])
    finally:
        _finish(d, before)


def _addresses(ifname: str) -> str:
    return subprocess.run(["ip", "-6", "addr", "show", "dev", ifname], capture_output=True, text=True).stdout


# -- user networks ----------------------------------------------------------------------------------
@needs_dockerd
def test_ipv6_without_a_subnet_as_dockerd(d6, ref6) -> None:
    """dockerd 20.10 has no default IPv6 pool: fixed-cidr-v6 is the default bridge's alone."""
    got = {}
    for side, e in _engines(d6, ref6):
        got[side] = outcome(lambda: api_of(e).create_network("v6-nosub", enable_ipv6=True))
        e.cli("network", "rm", "v6-nosub", check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"][0] == 404


POOLS = {"ours": ("10.231.64.0/22", "fd00:dead:bf01::/48"), "theirs": ("10.232.64.0/22", "fd00:dead:bf02::/48")}


@needs_dockerd
def test_ipv6_subnet_from_default_address_pools_as_dockerd(tmp_path: Path) -> None:
    """dockerd 20.10 takes an IPv6 network's subnet from the IPv6 entries of default-address-pools."""
    got = {}
    ours = make_daemon(tmp_path / "ours")
    ours.config = {"default-address-pools": [{"base": POOLS["ours"][0], "size": 24},
                                             {"base": POOLS["ours"][1], "size": 64}]}
    base = Path(tempfile.mkdtemp(prefix="rd6-", dir="/tmp"))  # short: containerd's socket path goes under it
    theirs = refdocker.make_refdocker(base)
    theirs.extra_args = [f"--default-address-pool=base={POOLS['theirs'][0]},size=24",
                         f"--default-address-pool=base={POOLS['theirs'][1]},size=64"]
    try:
        (tmp_path / "ours").mkdir()
        ours.start()
        theirs.start()
        for side, e in _engines(ours, theirs):
            e.cli("network", "create", "--ipv6", "auto6")
            config = api_of(e).inspect_network("auto6")["IPAM"]["Config"]
            v6 = _prefix(POOLS[side][1])
            # the IPv4 entry is from the pool too (ours took the first /24 for its default bridge, theirs has none);
            # dockerd 20.10 writes this IPv6 gateway with the prefix length ("fd00::1/64"), unlike every other
            got[side] = (ipaddress.ip_network(config[0]["Subnet"]).subnet_of(ipaddress.ip_network(POOLS[side][0])),
                         {k: v.replace(v6, "P6").removesuffix("/64" if k == "Gateway" else "")
                          for k, v in config[1].items()}, len(config))
            e.cli("network", "rm", "auto6")
    finally:
        ours.teardown()
        theirs.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert got["ours"] == got["theirs"]
    assert got["ours"] == (True, {"Subnet": "P6::/64", "Gateway": "P6::1"}, 2)


def test_pool_subnets_are_taken_in_turn(tmp_path: Path) -> None:
    """The next free /64 (dockerd 20.10 refuses a second network from a /48 pool: moby#42801, not copied)."""
    pools = [{"base": "10.231.64.0/22", "size": 24}, {"base": "fd00:dead:bf01::/48", "size": 64}]
    first = ipam.choose_subnet6(pools, [])
    assert str(first) == "fd00:dead:bf01::/64"
    assert str(ipam.choose_subnet6(pools, [first])) == "fd00:dead:bf01:1::/64"
    assert ipam.choose_subnet6(pools[:1], []) is None
    c = daemon_config.load(["--config-file", str(_write(tmp_path, {"default-address-pools": pools}))])
    assert c.network().default_address_pools == pools
    with pytest.raises(ConfigError, match="invalid size 127"):
        daemon_config.load(["--config-file", str(_write(tmp_path, {"default-address-pools": [
            {"base": "fd00:dead:bf01::/48", "size": 127}]}))])


def _v6_network(e, side: str, name: str = "v6x") -> None:
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=NET4[side]),
                                                 docker.types.IPAMPool(subnet=NET6[side])])
    api_of(e).create_network(name, driver="bridge", ipam=ipam, enable_ipv6=True)


def _answers(out: str, side: str) -> list[str]:
    """The Name/Address lines of nslookup's answer (the server's own lines left out), addresses made alike."""
    lines = out.split("\n\n", 1)[1].splitlines() if "\n\n" in out else []
    out_lines = []
    for line in lines:
        if line.startswith(("Name:", "Address")):
            for subnet, alike in ((NET6[side], "P6"), (NET4[side], "V4"), (V4ONLY[side], "V4ONLY")):
                line = line.replace(_prefix(subnet) if ":" in subnet else subnet.rsplit(".", 1)[0], alike)
            out_lines.append(line)
    return out_lines


@needs_dockerd
def test_aaaa_answers_as_dockerd(d6, ref6) -> None:
    """Names, aliases and name.network answer AAAA with the IPv6 address on the asker's network; a name there
    without one gets NOERROR and no answer."""
    got = {}
    for side, e in _engines(d6, ref6):
        try:
            _v6_network(e, side)
            e.cli("network", "create", "--subnet", V4ONLY[side], "v4only")
            e.cli("run", "-d", "--name", "q6", "--network", "v6x", "--network-alias", "al6", "busybox", "sleep", "60")
            e.cli("run", "-d", "--name", "q4", "--network", "v4only", "busybox", "sleep", "60")
            e.cli("network", "connect", "v4only", "q6")
            e.cli("run", "-d", "--name", "asker4", "--network", "v4only", "busybox", "sleep", "60")
            answers = {}
            for asker, name, qtype in (("q6", "q6", "AAAA"), ("q6", "al6", "AAAA"), ("q6", "q6.v6x", "AAAA"),
                                       ("q6", "q4", "AAAA"), ("asker4", "q6", "AAAA"), ("asker4", "q4", "AAAA"),
                                       ("asker4", "q4", "A")):
                res = e.cli("exec", asker, "nslookup", f"-type={qtype}", name, "127.0.0.11", check=False)
                answers[f"{asker}:{name}:{qtype}"] = (res.returncode, _answers(res.stdout_text, side))
            got[side] = answers
        finally:
            cleanup(e, "q6", "q4", "asker4")
            e.cli("network", "rm", "v6x", "v4only", check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"]["q6:al6:AAAA"] == (0, ["Name:\tal6", "Address: P6::2"])
    assert got["ours"]["asker4:q6:AAAA"] == (0, [])  # q6 has no IPv6 address on v4only


@needs_dockerd
def test_connect_adds_the_ipv6_hosts_line_as_dockerd(d6, ref6) -> None:
    got = {}
    for side, e in _engines(d6, ref6):
        p6 = _prefix(NET6[side])
        try:
            _v6_network(e, side)
            e.cli("network", "create", "--subnet", V4ONLY[side], "v4only")
            e.cli("run", "-d", "--name", "h6", "--hostname", "h6", "--network", "v4only", "busybox", "sleep", "60")
            e.cli("network", "connect", "--ip", NET4[side].replace(".0/24", ".55"), "--ip6", f"{p6}::55", "v6x",
                  "h6")
            hosts = e.cli("exec", "h6", "cat", "/etc/hosts").stdout_text.splitlines()
            got[side] = [ln.replace(p6, "P6").replace(NET4[side].rsplit(".", 1)[0], "V4")
                         .replace(V4ONLY[side].rsplit(".", 1)[0], "V4ONLY") for ln in hosts if ln.endswith("\th6")]
        finally:
            cleanup(e, "h6")
            e.cli("network", "rm", "v6x", "v4only", check=False)
    assert got["ours"] == got["theirs"]
    assert got["ours"][-2:] == ["V4.55\th6", "P6::55\th6"]


# -- ip6tables ----------------------------------------------------------------------------------------
def test_ip6tables_rules_follow_the_network(d6) -> None:
    _v6_network(d6, "ours")
    bridge = "br-" + d6.api().inspect_network("v6x")["Id"][:12]
    subnet = NET6["ours"]
    try:
        rules = _naming(bridge)
        assert f"nat DOCKYARD-POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE" in rules
        assert f"filter DOCKYARD-FORWARD -i {bridge} -j ACCEPT" in rules
        assert f"filter DOCKYARD-ISOLATION-2 -o {bridge} -j DROP" in rules
        d6.cli("run", "-d", "--name", "pub6", "--network", "v6x", "-p", "80", "busybox", "sleep", "60")
        s = _inspect(d6, "pub6")["NetworkSettings"]
        addr6 = s["Networks"]["v6x"]["GlobalIPv6Address"]
        port = s["Ports"]["80/tcp"][1]["HostPort"]
        dnat = (f"nat DOCKYARD ! -i {bridge} -p tcp -m tcp --dport {port} -j DNAT --to-destination "
                f"[{addr6}]:80")
        assert dnat in _naming(bridge)
        d6.cli("rm", "-f", "pub6")
        assert dnat not in _naming(bridge)
    finally:
        cleanup(d6, "pub6")
        d6.cli("network", "rm", "v6x", check=False)
    assert not _naming(bridge) and not {r for r in _ip6_rules() if subnet in r}


def test_no_ip6tables_rules_without_the_option(d) -> None:
    """dockerd 20.10's default (ip6tables false): no rules; the port on [::] is the userland proxy's."""
    before = _ip6_rules()
    _v6_network(d, "ours", "v6plain")
    try:
        d.cli("run", "-d", "--name", "plain6", "--network", "v6plain", "-p", "80", "busybox", "httpd", "-f",
              "-p", "80", "-h", "/etc")
        s = _inspect(d, "plain6")["NetworkSettings"]
        assert _ip6_rules() == before
        assert [b["HostIp"] for b in s["Ports"]["80/tcp"]] == ["0.0.0.0", "::"]
        assert _http_get("::1", int(s["Ports"]["80/tcp"][1]["HostPort"]))
    finally:
        cleanup(d, "plain6")
        d.cli("network", "rm", "v6plain", check=False)


def test_port_on_ipv6_reaches_a_container_without_ipv6(d) -> None:
    """dockerd 20.10 publishes a port on [::] too and its proxy carries it to the IPv4 address."""
    d.cli("run", "-d", "--name", "plain4", "-p", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        ports = _inspect(d, "plain4")["NetworkSettings"]["Ports"]["80/tcp"]
        assert [b["HostIp"] for b in ports] == ["0.0.0.0", "::"] and ports[0]["HostPort"] == ports[1]["HostPort"]
        assert _http_get("::1", int(ports[1]["HostPort"]))
        assert f"[::]:{ports[1]['HostPort']}->80/tcp" in d.cli("ps", "--filter", "name=plain4").stdout_text
    finally:
        cleanup(d, "plain4")


def _http_get(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
        return s.recv(4096).startswith(b"HTTP/1.1 200")


def test_published_port_dnat_over_ipv6(tmp_path, busybox_tar) -> None:
    """Without the userland proxy only the ip6tables DNAT carries [::] to the container; a container without
    IPv6 then gets no [::] binding, as dockerd's."""
    before = _ip6_rules()
    d = make_daemon(tmp_path, ["--ipv6", "--fixed-cidr-v6", "fd00:dead:bee4::/64", "--ip6tables",
                               "--userland-proxy=false"])
    try:
        d.start()
        d.cli("load", "-i", busybox_tar.path)
        d.cli("run", "-d", "--name", "web6", "-p", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
        d.cli("network", "create", "--subnet", "10.231.63.0/24", "v4net")
        d.cli("run", "-d", "--name", "web4", "--network", "v4net", "-p", "80", "busybox", "sleep", "60")
        ports = _inspect(d, "web6")["NetworkSettings"]["Ports"]["80/tcp"]
        assert [b["HostIp"] for b in ports] == ["0.0.0.0", "::"]
        # the host's own address on the bridge: OUTPUT's DNAT, no socket listens there
        assert _http_get("fd00:dead:bee4::1", int(ports[1]["HostPort"]))
        assert [b["HostIp"] for b in _inspect(d, "web4")["NetworkSettings"]["Ports"]["80/tcp"]] == ["0.0.0.0"]
    finally:
        _finish(d, before)
    assert _ip6_rules() == before


@pytest.fixture
def outside6(tmp_path):
    """A namespace reachable from the host at fd00:dead:cafe::2, with no route to any container subnet."""
    yield from outside_namespace(str(tmp_path / "ns"), "dy6out0", OUTSIDE_HOST, OUTSIDE_PEER, 64)


def test_ipv6_masquerade_to_outside(d6, outside6) -> None:
    """The outside has no route back to the container's subnet: the answer comes only through masquerade."""
    srv, t, peers = listener_in(outside6, OUTSIDE_PEER)
    _v6_network(d6, "ours", "v6out")
    try:
        out = d6.cli("run", "--rm", "--network", "v6out", "busybox", "nc", "-w", "5", OUTSIDE_PEER, "8099").stdout_text
        t.join(5)
    finally:
        srv.close()
        d6.cli("network", "rm", "v6out", check=False)
    assert out.strip() == "outside"
    assert peers == [OUTSIDE_HOST]


def test_restart_keeps_ipv6_ports_and_rules(tmp_path, busybox_tar) -> None:
    before = _ip6_rules()
    d = make_daemon(tmp_path, ["--ipv6", "--fixed-cidr-v6", "fd00:dead:bee6::/64", "--ip6tables"])
    try:
        d.start()
        d.cli("load", "-i", busybox_tar.path)
        d.cli("run", "-d", "--name", "keep6", "-p", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
        was = _inspect(d, "keep6")["NetworkSettings"]
        bridge = d.bridge_args()[1]
        rules = _naming(bridge)
        d.restart()
        now = _inspect(d, "keep6")["NetworkSettings"]
        assert now["Ports"] == was["Ports"] and now["GlobalIPv6Address"] == was["GlobalIPv6Address"]
        assert _naming(bridge) == rules  # each once: the DNAT and the network's rules
        assert _http_get("::1", int(now["Ports"]["80/tcp"][1]["HostPort"]))  # the proxy again, to [addr6]:80
    finally:
        _finish(d, before)
    assert _ip6_rules() == before
