"""Container networking through the real docker CLI: default bridge, user networks, DNS, ports, teardown."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request

import pytest


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _links_on(bridge: str) -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _rules(word: str) -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if word in line]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def _inspect(d, ref: str) -> dict:
    return json.loads(d.cli("inspect", ref).stdout_text)[0]


def test_default_bridge_gives_address_gateway_route(d):
    out = d.cli("run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0; ip route").stdout_text
    bridge = d.client().networks.get("bridge").attrs
    cfg = bridge["IPAM"]["Config"][0]
    assert f"default via {cfg['Gateway']} dev eth0" in out
    assert "inet " + cfg["Subnet"].rsplit(".", 2)[0] in out
    assert bridge["Options"]["com.docker.network.bridge.name"] in _links()


def test_default_bridge_avoids_host_routes(d):
    import ipaddress
    subnet = ipaddress.ip_network(d.client().networks.get("bridge").attrs["IPAM"]["Config"][0]["Subnet"])
    out = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    bridge = d.client().networks.get("bridge").attrs["Options"]["com.docker.network.bridge.name"]
    for line in out.splitlines():
        dst = line.split()[0]
        if dst == "default" or bridge in line:
            continue
        assert not subnet.overlaps(ipaddress.ip_network(dst, strict=False)), line


def test_network_ls_inspect_and_filters(d):
    d.cli("network", "create", "--label", "team=a", "lsnet")
    try:
        names = d.cli("network", "ls", "--format", "{{.Name}}").stdout_text.split()
        assert {"bridge", "host", "none", "lsnet"} <= set(names)
        custom = d.cli("network", "ls", "-f", "type=custom", "--format", "{{.Name}}").stdout_text.split()
        assert "lsnet" in custom and "bridge" not in custom
        assert d.cli("network", "ls", "-f", "label=team=a", "-q").stdout_text.strip()
        assert d.cli("network", "ls", "-f", "driver=null", "--format", "{{.Name}}").stdout_text.split() == ["none"]
        info = json.loads(d.cli("network", "inspect", "lsnet").stdout_text)[0]
        assert info["Labels"] == {"team": "a"} and info["Driver"] == "bridge"
    finally:
        d.cli("network", "rm", "lsnet")


def test_user_network_name_resolution_ping_and_wget(d):
    d.cli("network", "create", "--subnet", "10.231.7.0/24", "appnet")
    try:
        d.cli("run", "-d", "--name", "web1", "--network", "appnet", "--network-alias", "www",
              "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
        out = d.cli("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                    # 3 echoes, one reply is enough (ping exits 0 then): a loaded machine may lose one
                    "ping -c3 -W5 -w15 web1 && nslookup www 127.0.0.11 && cat /etc/resolv.conf").stdout_text
        assert re.search(r"[123] packets received", out), out
        assert "10.231.7.2" in out
        assert "nameserver 127.0.0.11" in out
        ip = _inspect(d, "web1")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
        got = d.cli("run", "--rm", "--network", "appnet", "busybox", "wget", "-qO-", f"http://{ip}/hostname")
        assert got.stdout_text.strip() == _inspect(d, "web1")["Config"]["Hostname"]
        info = json.loads(d.cli("network", "inspect", "appnet").stdout_text)[0]
        assert [c["Name"] for c in info["Containers"].values()] == ["web1"]
    finally:
        d.cli("rm", "-f", "web1", check=False)
        d.cli("network", "rm", "appnet", check=False)


def test_published_port_on_loopback(d):
    port = _free_port()
    d.cli("run", "-d", "--name", "pub1", "-p", f"127.0.0.1:{port}:80", "busybox",
          "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        body = b""
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=3).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body.decode().strip() == _inspect(d, "pub1")["Config"]["Hostname"]
        assert d.cli("port", "pub1").stdout_text.strip() == f"80/tcp -> 127.0.0.1:{port}"
        assert f"127.0.0.1:{port}->80/tcp" in d.cli("ps").stdout_text
        ports = _inspect(d, "pub1")["NetworkSettings"]["Ports"]
        assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    finally:
        d.cli("rm", "-f", "pub1")
    assert not [r for r in _rules(f"--dport {port} ")]


def test_port_in_use_fails_start_clearly(d):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        res = d.cli("run", "-d", "--name", "busy1", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30",
                    check=False)
        assert res.returncode != 0
        assert "address already in use" in res.stderr_text
        assert f"127.0.0.1:{port}" in res.stderr_text
    finally:
        holder.close()
        d.cli("rm", "-f", "busy1", check=False)


def test_teardown_leaves_nothing(d):
    d.cli("network", "create", "-o", "com.docker.network.bridge.name=dytear0", "tearnet")
    assert "dytear0" in _links()
    d.cli("run", "-d", "--name", "tear1", "--network", "tearnet", "-p", "80", "busybox", "sleep", "60")
    # (other tests' links may come and go meanwhile: count the ones on this bridge)
    veths = _links_on("dytear0")
    assert len(veths) == 1 and veths <= _links()  # the host end of the container's veth
    assert _rules("dytear0")
    d.cli("rm", "-f", "tear1")
    d.cli("network", "rm", "tearnet")
    assert not ({"dytear0"} | veths) & _links()
    assert not _rules("dytear0")


def _api_error(d, *args) -> str:
    res = d.cli(*args, check=False)
    assert res.returncode != 0, res.stdout_text
    return res.stderr_text.strip()


def test_bad_input_dockerd_wording_nothing_changed(d):
    d.cli("network", "create", "--subnet", "10.231.20.0/24", "badnet")
    try:
        before = d.cli("network", "ls", "-q").stdout_text
        assert "Pool overlaps with other one on this address space" in \
            _api_error(d, "network", "create", "--subnet", "10.231.20.128/25", "other")
        # the CLI refuses that gateway itself; the daemon must too
        import docker
        pool = docker.types.IPAMPool(subnet="10.231.21.0/24", gateway="10.231.99.1")
        with pytest.raises(docker.errors.APIError) as err:
            d.api().create_network("other", ipam=docker.types.IPAMConfig(pool_configs=[pool]))
        assert err.value.status_code == 400 and "10.231.99.1" in str(err.value)
        assert "network with name badnet already exists" in _api_error(d, "network", "create", "badnet")
        assert d.cli("network", "ls", "-q").stdout_text == before
        assert "It does not belong to any of this network's subnets" in \
            _api_error(d, "run", "--rm", "--network", "badnet", "--ip", "10.9.9.9", "busybox", "true")
        d.cli("run", "-d", "--name", "fixed1", "--network", "badnet", "--ip", "10.231.20.50", "busybox",
              "sleep", "60")
        assert "Address already in use" in _api_error(
            d, "run", "--name", "fixed2", "--network", "badnet", "--ip", "10.231.20.50", "busybox", "true")
        assert "has active endpoints" in _api_error(d, "network", "rm", "badnet")
        assert "already exists in network badnet" in _api_error(d, "network", "connect", "badnet", "fixed1")
        assert "is a pre-defined network and cannot be removed" in _api_error(d, "network", "rm", "bridge")
        # (the CLI answers a 404 on create by pulling the image, as with dockerd: ask the API)
        with pytest.raises(docker.errors.NotFound, match="network nosuchnet not found"):
            d.client().containers.create("busybox", "true", network="nosuchnet")
        assert _inspect(d, "fixed1")["NetworkSettings"]["Networks"]["badnet"]["IPAddress"] == "10.231.20.50"
    finally:
        d.cli("rm", "-f", "fixed1", "fixed2", check=False)
        d.cli("network", "rm", "badnet", check=False)


def test_connect_and_disconnect_live(d):
    d.cli("network", "create", "--subnet", "10.231.30.0/24", "livenet")
    try:
        d.cli("run", "-d", "--name", "live1", "busybox", "sleep", "60")
        d.cli("network", "connect", "--ip", "10.231.30.9", "--alias", "buddy", "livenet", "live1")
        out = d.cli("exec", "live1", "ip", "-4", "addr").stdout_text
        assert "10.231.30.9/24" in out and "eth1" in out
        res = d.cli("run", "--rm", "--network", "livenet", "busybox", "nslookup", "buddy", "127.0.0.11")
        assert "10.231.30.9" in res.stdout_text
        nets = _inspect(d, "live1")["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge", "livenet"}
        d.cli("network", "disconnect", "livenet", "live1")
        out = d.cli("exec", "live1", "ip", "-4", "addr").stdout_text
        assert "10.231.30.9" not in out and "eth1" not in out
        assert set(_inspect(d, "live1")["NetworkSettings"]["Networks"]) == {"bridge"}
        assert "is not connected to network livenet" in _api_error(d, "network", "disconnect", "livenet", "live1")
    finally:
        d.cli("rm", "-f", "live1", check=False)
        d.cli("network", "rm", "livenet", check=False)


def test_publish_all_exposed_ports_and_ranges(d, tmp_path):
    d.cli("run", "-d", "--name", "pall", "--expose", "7000", "-P", "-p", "127.0.0.1::7001/udp",
          "busybox", "sleep", "60")
    try:
        ports = _inspect(d, "pall")["NetworkSettings"]["Ports"]
        assert int(ports["7000/tcp"][0]["HostPort"]) > 1024
        assert ports["7001/udp"][0]["HostIp"] == "127.0.0.1"
        out = d.cli("port", "pall", "7000").stdout_text
        assert out.strip().endswith(ports["7000/tcp"][0]["HostPort"])
    finally:
        d.cli("rm", "-f", "pall")
    lo = _free_port()
    d.cli("run", "-d", "--name", "prange", "-p", f"127.0.0.1:{lo}-{lo + 1}:8000-8001", "busybox", "sleep", "60")
    try:
        ports = _inspect(d, "prange")["NetworkSettings"]["Ports"]
        assert {ports["8000/tcp"][0]["HostPort"], ports["8001/tcp"][0]["HostPort"]} == {str(lo), str(lo + 1)}
    finally:
        d.cli("rm", "-f", "prange")


def test_network_events(d):
    since = str(time.time())
    d.cli("network", "create", "evnet")
    d.cli("run", "--rm", "--network", "evnet", "busybox", "true")
    d.cli("network", "rm", "evnet")
    out = d.cli("events", "--since", since, "--until", str(time.time() + 1), "-f", "type=network",
                "--format", "{{.Action}}").stdout_text.split()
    assert out == ["create", "connect", "disconnect", "destroy"]
