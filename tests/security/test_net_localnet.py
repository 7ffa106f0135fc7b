"""Finding 3 (the CVE-2020-8558 class): a default container must not reach services on the host's 127.0.0.1.

A container has CAP_NET_RAW by default, so it can write a frame to the gateway's MAC with 127.0.0.1 as
destination. With ``route_localnet=1`` on the bridge the host routed it to its own loopback services.
``route_localnet`` stays 0 by default (the userland proxy carries ports published on 127.0.0.1), and with
``--userland-proxy=false`` the bridge needs it, so raw-table rules drop what the bridge sends to 127.0.0.0/8.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest
from netprobe import netprobe_dir

# the gateway's MAC from the container's ARP table, then a raw UDP and a raw TCP SYN to 127.0.0.1
PROBE = ("gw=$(ip route | awk '/^default/ {print $3}'); ping -c1 -W1 $gw >/dev/null 2>&1; "
         "mac=$(awk -v gw=$gw '$1 == gw {print $4}' /proc/net/arp); echo mac=$mac; "
         "/probe/rawprobe eth0 $mac udp {udp} && /probe/rawprobe eth0 $mac tcp {tcp}")


def _route_localnet(bridge: str) -> str:
    with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", encoding="ascii") as f:
        return f.read().strip()


def _probe_host_loopback(d) -> tuple[bytes | None, str]:
    """What a default container's crafted packets got from listeners on the host's 127.0.0.1."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket()
    try:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        script = PROBE.replace("{udp}", str(udp.getsockname()[1])).replace("{tcp}", str(tcp.getsockname()[1]))
        out = d.cli("run", "--rm", "-v", f"{netprobe_dir()}:/probe:ro", "busybox", "sh", "-c", script,
                    timeout=60).stdout_text
        assert "mac=" in out and "mac=\n" not in out, out  # the probe really had the gateway's MAC
        udp.settimeout(2)  # bounded: the datagrams were sent before the container exited
        try:
            got: bytes | None = udp.recv(100)
        except socket.timeout:
            got = None
        return got, out
    finally:
        udp.close()
        tcp.close()


def _published_loopback_works(d, name: str) -> None:
    d.cli("run", "-d", "--name", name, "-p", "127.0.0.1::80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        port = int(d.cli("port", name, "80/tcp").stdout_text.strip().rsplit(":", 1)[1])
        body = b""
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=3).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body.strip() == d.api().inspect_container(name)["Config"]["Hostname"].encode()
    finally:
        d.cli("rm", "-f", name)


def test_default_container_cannot_reach_host_loopback(d) -> None:
    got, out = _probe_host_loopback(d)
    assert got is None, f"a container delivered {got!r} to a host listener on 127.0.0.1"
    assert "synack" not in out, "a container's SYN to 127.0.0.1 was answered by the host"
    assert _route_localnet(d.bridge_args()[1]) == "0"


def test_loopback_published_port_works_without_route_localnet(d) -> None:
    _published_loopback_works(d, "localnet-pub")
    assert _route_localnet(d.bridge_args()[1]) == "0"


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_userland_proxy_carries_both_protocols(d, proto: str) -> None:
    """A TCP and a UDP echo published on 127.0.0.1, through the proxy, from several clients."""
    server = ["sh", "-c", "nc -ll -p 7 -e cat"] if proto == "tcp" else ["/probe/udpecho", "7"]
    name = f"localnet-echo-{proto}"
    d.cli("run", "-d", "--name", name, "-v", f"{netprobe_dir()}:/probe:ro", "-p", f"127.0.0.1::7/{proto}",
          "busybox", *server)
    try:
        port = int(d.cli("port", name, f"7/{proto}").stdout_text.strip().rsplit(":", 1)[1])
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        for i in range(3):
            msg = f"hello {i}\n".encode()
            got = b""
            for _ in range(50):  # the server may not listen yet
                with socket.socket(socket.AF_INET, kind) as s:
                    s.settimeout(1)
                    try:
                        s.connect(("127.0.0.1", port))
                        s.sendall(msg)
                        got = s.recv(100)
                    except OSError:
                        pass
                if got == msg:
                    break
                time.sleep(0.1)
            assert got == msg
    finally:
        d.cli("rm", "-f", name)


def test_no_userland_proxy_drops_loopback_from_bridge(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.extra_args.append("--userland-proxy=false")
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    bridge = d.bridge_args()[1]
    assert _route_localnet(bridge) == "1"  # DNAT of 127.0.0.1 needs it: the raw rules make up for it
    got, out = _probe_host_loopback(d)
    assert got is None, f"a container delivered {got!r} to a host listener on 127.0.0.1"
    assert "synack" not in out
    _published_loopback_works(d, "localnet-noproxy")


def test_container_reaches_published_port_through_its_gateway(d) -> None:
    """Hairpin: DNAT skips traffic from the container's own bridge, so the proxy carries it."""
    d.cli("run", "-d", "--name", "localnet-hairpin", "-p", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        port = d.cli("port", "localnet-hairpin", "80/tcp").stdout_text.split()[0].rsplit(":", 1)[1]
        script = ("gw=$(ip route | awk '/^default/ {print $3}'); for i in 1 2 3 4 5; do "
                  f"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $gw {port} && break; sleep 0.2; done")
        out = d.cli("run", "--rm", "busybox", "sh", "-c", script, timeout=60).stdout_text
        assert out.rstrip().endswith(d.api().inspect_container("localnet-hairpin")["Config"]["Hostname"]), out
    finally:
        d.cli("rm", "-f", "localnet-hairpin")


def test_restart_with_the_proxy_after_running_without(fresh_daemon, busybox_tar) -> None:
    """The rules of the old setting go: a loopback DNAT left behind would now lead nowhere."""
    d = fresh_daemon
    d.extra_args.append("--userland-proxy=false")
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("run", "-d", "--name", "localnet-switch", "-p", "127.0.0.1::80", "busybox",
          "httpd", "-f", "-p", "80", "-h", "/etc")
    port = int(d.cli("port", "localnet-switch", "80/tcp").stdout_text.strip().rsplit(":", 1)[1])
    d.stop()  # the container outlives the daemon
    d.extra_args.remove("--userland-proxy=false")
    d.start()
    assert _route_localnet(d.bridge_args()[1]) == "0"
    body = b""
    for _ in range(20):  # bounded: a stale DNAT makes every try wait its whole timeout
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    assert body.strip() == d.api().inspect_container("localnet-switch")["Config"]["Hostname"].encode()
    d.cli("rm", "-f", "localnet-switch")
