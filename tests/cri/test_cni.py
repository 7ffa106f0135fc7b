"""network/cni.py in-process with Debian's real plugins (bridge, host-local, portmap, loopback) in a netns
of the test's own: ADD/CHECK/DEL of a list, the result cache, CNI_ARGS, portMappings, and a failed ADD
that leaves nothing behind. No daemon."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from cri.hostrules import nat_rules, remove_portmap_chains, sh
from dockyard import errors
from dockyard.network import cni, podnet

BIN_DIRS = [d for d in cni.DEFAULT_BIN_DIRS if os.path.isfile(os.path.join(d, "bridge"))]
pytestmark = pytest.mark.skipif(not BIN_DIRS or os.geteuid() != 0, reason="needs root and the CNI plugins")

SUBNET = "10.233.41.0/24"


@pytest.fixture
def netns() -> Iterator[str]:
    name = "cnitest-" + secrets.token_hex(4)
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


@dataclass
class Network:
    """A bridge + host-local + portmap list on a bridge of the test's own, and the runner that ADDs it."""

    conf: cni.NetworkConfigList
    bridge: str
    ipam_dir: Path
    runner: cni.Cni
    added: list[tuple[cni.NetworkConfigList, cni.RuntimeConf]] = field(default_factory=list)

    def add(self, net: cni.NetworkConfigList, rt: cni.RuntimeConf) -> cni.Result:
        self.added.append((net, rt))
        return self.runner.add(net, rt)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """Teardown DELs what the test added (even when it failed half way), then removes what the plugins
    leave on the host by design: the bridge, and portmap's shared chains when nothing else had them."""
    bridge = "cnitest" + secrets.token_hex(3)
    ipam_dir = tmp_path / "ipam"
    conf = {"cniVersion": "1.0.0", "name": "cnitest-" + bridge, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "ipam": {"type": "host-local", "dataDir": str(ipam_dir), "ranges": [[{"subnet": SUBNET}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]}
    portmap_chains_before = "CNI-HOSTPORT-" in nat_rules()
    net = Network(cni.parse_list(json.dumps(conf).encode(), "test.conflist"), bridge, ipam_dir,
                  cni.Cni(BIN_DIRS, str(tmp_path / "cache")))
    try:
        yield net
    finally:
        for conf_list, rt in reversed(net.added):
            try:
                net.runner.delete(conf_list, rt)
            except cni.CniError:
                pass  # a list made to fail: its ADD undid itself
        sh("ip", "link", "del", bridge, check=False)
        if not portmap_chains_before:
            remove_portmap_chains()


def leases(ipam_dir: Path) -> list[str]:
    """host-local's lease files (one per address, named by it)."""
    return sorted(p.name for p in ipam_dir.rglob("*") if p.is_file() and p.name[0].isdigit())


def test_add_check_del_of_a_list(netns: str, network: Network, tmp_path: Path) -> None:
    net, ipam_dir, runner = network.conf, network.ipam_dir, network.runner
    cid = secrets.token_hex(32)
    rt = cni.RuntimeConf(cid, f"/var/run/netns/{netns}",
                         args=cni.pod_args("default", "web", cid, "uid-1"),
                         capability_args={"portMappings": [{"hostPort": 38123, "containerPort": 80,
                                                            "protocol": "tcp"}],
                                          "bandwidth": {"ingressRate": 1}})
    network.add(cni.loopback_list(), cni.RuntimeConf(cid, rt.netns, ifname="lo"))
    result = network.add(net, rt)

    [ip] = result.ips
    assert ip.network == ipaddress.ip_network(SUBNET) and ip.ip != ipaddress.ip_address("10.233.41.1")
    assert f"inet {ip.with_prefixlen}" in sh("ip", "-n", netns, "-o", "addr", "show", "eth0").stdout
    assert "<LOOPBACK,UP," in sh("ip", "-n", netns, "link", "show", "lo").stdout
    assert leases(ipam_dir) == [str(ip.ip)]
    # portmap got the capability it declared, so the DNAT to the pod's port is in place
    assert "--dport 38123" in nat_rules() and f"{ip.ip}:80" in nat_rules()
    cached = json.loads((tmp_path / "cache" / "results" / f"{net.name}-{cid}-eth0").read_text())
    assert cached["kind"] == "cniCacheV1" and cached["result"] == result.raw
    assert ["K8S_POD_NAME", "web"] in cached["cniArgs"] and cached["cniArgs"][0] == ["IgnoreUnknown", "1"]
    assert runner.cached_result(net, rt) is not None

    # CHECK of the bridge alone: portmap 1.1.1's CHECK also wants IPv6 rules that an IPv4-only ADD
    # never made (containernetworking/plugins#819)
    runner.check(cni.NetworkConfigList(net.name, net.cni_version, net.plugins[:1], net.raw), rt)

    runner.delete(net, rt)
    assert "eth0" not in sh("ip", "-n", netns, "-o", "link").stdout
    assert leases(ipam_dir) == []
    assert f"{ip.ip}:80" not in nat_rules()
    assert runner.cached_result(net, rt) is None
    runner.delete(net, rt)  # a second DEL (after a restart, say) is not an error
    with pytest.raises(cni.CniError, match="no cached result"):
        runner.check(net, rt)


def test_failed_add_leaves_nothing(netns: str, network: Network) -> None:
    net, ipam_dir, runner = network.conf, network.ipam_dir, network.runner
    # the bridge plugin succeeds, then the list's second plugin fails
    broken = cni.NetworkConfigList(net.name, net.cni_version, [net.plugins[0], {"type": "tuning",
                                   "sysctl": {"net.ipv4.no_such_sysctl": "1"}}], net.raw)
    rt = cni.RuntimeConf(secrets.token_hex(32), f"/var/run/netns/{netns}")
    with pytest.raises(cni.CniError, match=r'plugin type="tuning" name="cnitest-\w+" failed \(add\): .*no_such_sysctl'):
        network.add(broken, rt)
    assert "eth0" not in sh("ip", "-n", netns, "-o", "link").stdout
    assert leases(ipam_dir) == []
    assert runner.cached_result(broken, rt) is None


def test_missing_plugin_is_named(tmp_path: Path) -> None:
    net = cni.parse_list(b'{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "nosuchplugin"}]}', "")
    with pytest.raises(cni.CniError, match=r'failed to find plugin "nosuchplugin" in path'):
        cni.Cni(BIN_DIRS, str(tmp_path)).add(net, cni.RuntimeConf("c1", "/var/run/netns/none"))


def test_load_dir_takes_the_first_valid_file(tmp_path: Path) -> None:
    with pytest.raises(cni.NoNetworkConfig, match="no network config found in"):
        cni.load_dir(str(tmp_path / "absent"))
    (tmp_path / "05-broken.conflist").write_text("{not json")
    (tmp_path / "07-noplugins.conflist").write_text('{"cniVersion": "1.0.0", "name": "x", "plugins": []}')
    (tmp_path / "README").write_text("not a config")
    with pytest.raises(cni.NoNetworkConfig):
        cni.load_dir(str(tmp_path))
    # a single plugin's .conf is made a list of one
    (tmp_path / "10-single.conf").write_text(
        '{"cniVersion": "0.4.0", "name": "single", "type": "bridge", "bridge": "b0"}')
    (tmp_path / "20-list.conflist").write_text(
        '{"cniVersion": "1.0.0", "name": "list", "plugins": [{"type": "bridge"}]}')
    net = cni.load_dir(str(tmp_path))
    assert (net.name, net.cni_version, net.plugins) == ("single", "0.4.0", [{"type": "bridge", "bridge": "b0"}])
    assert net.path == str(tmp_path / "10-single.conf")


def test_results_of_old_versions_give_their_ips() -> None:
    assert cni.Result({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/16"}}).ips == \
        [ipaddress.ip_interface("10.1.0.5/16")]
    # only the container's side counts: the host's bridge address (no sandbox) is not the pod's
    result = cni.Result({"interfaces": [{"name": "br"}, {"name": "eth0", "sandbox": "/var/run/netns/x"}],
                         "ips": [{"address": "10.2.0.1/24", "interface": 0},
                                 {"address": "10.2.0.7/24", "interface": 1}]})
    assert result.ips == [ipaddress.ip_interface("10.2.0.7/24")]


def test_pod_network_setup_and_teardown(network: Network, tmp_path: Path) -> None:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    (conf_dir / "10-test.conflist").write_bytes(network.conf.raw)
    pods = podnet.PodNetworks(str(tmp_path / "netns"), str(tmp_path / "cache"), str(conf_dir), BIN_DIRS)
    pod = podnet.Pod(secrets.token_hex(32), "default", "web", "uid-2",
                     [{"hostPort": 38124, "containerPort": 8080, "protocol": "tcp"}])
    made = pods.setup(pod)
    try:
        assert made.netns == pods.netns_path(pod.sandbox_id) and made.network == network.conf.name
        [ip] = made.ips
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(SUBNET)
        inside = sh("nsenter", f"--net={made.netns}", "ip", "-o", "addr").stdout
        assert f"inet {ip}/24" in inside and "inet 127.0.0.1/8" in inside
        assert f"{ip}:8080" in nat_rules()
        # the directory changes (a network plugin's upgrade): teardown still DELs what was added
        (conf_dir / "10-test.conflist").unlink()
    finally:
        pods.teardown(pod.sandbox_id, made.network)
    assert not os.path.exists(made.netns)
    assert leases(network.ipam_dir) == [] and f"{ip}:8080" not in nat_rules()
    assert not list((tmp_path / "cache" / "results").iterdir())
    pods.teardown(pod.sandbox_id, made.network)  # again: nothing left to do, no error


def test_pod_network_failure_leaves_nothing(network: Network, tmp_path: Path) -> None:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    pods = podnet.PodNetworks(str(tmp_path / "netns"), str(tmp_path / "cache"), str(conf_dir), BIN_DIRS)
    pod = podnet.Pod(secrets.token_hex(32), "default", "web", "uid-3")
    with pytest.raises(errors.Unavailable, match="cni plugin not initialized"):
        pods.setup(pod)
    broken = {**json.loads(network.conf.raw), "plugins": [network.conf.plugins[0], {"type": "nosuchplugin"}]}
    (conf_dir / "10-broken.conflist").write_text(json.dumps(broken))
    with pytest.raises(cni.CniError, match=r'failed to set up the network of pod default/web: .*"nosuchplugin"'):
        pods.setup(pod)
    assert os.listdir(tmp_path / "netns") == []
    assert leases(network.ipam_dir) == []
    assert not list((tmp_path / "cache" / "results").iterdir())
