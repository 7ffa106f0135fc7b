"""Container networking through the real docker CLI: default bridge, user networks, DNS, ports, teardown."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import pytest


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
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
                    "ping -c1 -W2 web1 && nslookup www 127.0.0.11 && cat /etc/resolv.conf").stdout_text
        assert "1 packets received" in out
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
    before_links = _links()
    d.cli("network", "create", "-o", "com.docker.network.bridge.name=dytear0", "tearnet")
    assert "dytear0" in _links()
    d.cli("run", "-d", "--name", "tear1", "--network", "tearnet", "-p", "80", "busybox", "sleep", "60")
    assert len(_links() - before_links) == 2  # bridge + host end of the veth
    assert _rules("dytear0")
    d.cli("rm", "-f", "tear1")
    d.cli("network", "rm", "tearnet")
    assert _links() == before_links
    assert not _rules("dytear0")
