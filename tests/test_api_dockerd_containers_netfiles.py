"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, side by side with the reference dockerd:
``--network container:A`` takes A's very files (its paths in inspect, the same inodes, A's host and
domain names), what a network mode rules out at create, and the resolv.conf --dns, --dns-search and
--dns-option make in each network mode."""

from __future__ import annotations

import os
import re
import socket

import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd
REF_BRIDGE = True  # the reference dockerd gets a bridge of its own (conftest's ref fixture)
# each engine's bridge gives its own address; the test's own (TEST-NET-1) are the same on both
ADDRESS = re.compile(r"\b(?!192\.0\.2\.)\d+\.\d+\.\d+\.\d+\b")
PATHS = ("HostnamePath", "HostsPath", "ResolvConfPath")
TARGET_FLAGS = ("-h", "ahost", "--domainname", "adom.example", "--dns", "192.0.2.53", "--dns-search", "s.example",
                "--dns-option", "ndots:3", "--add-host", "db:192.0.2.7")


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def _inspect(e, name: str) -> dict:
    return api_of(e).inspect_container(name)


def test_a_joiner_has_the_targets_files_and_names(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            target = e.cli("run", "-d", "--name", "nf-a", *TARGET_FLAGS, "busybox", "sleep", "1000").stdout_text.strip()
            # --dns-search and --dns-option are no conflict, and the target's resolv.conf wins over them
            e.cli("create", "--name", "nf-b", "--network", "container:nf-a", "--dns-search", "other.example",
                  "busybox", "sleep", "1000")
            created = _inspect(e, "nf-b")
            e.cli("start", "nf-b")
            script = "cat /etc/hosts /etc/resolv.conf /etc/hostname; hostname; echo $HOSTNAME; " \
                     "cat /proc/sys/kernel/domainname"
            inside = {name: ADDRESS.sub("IP", e.cli("exec", name, "sh", "-c", script).stdout_text)
                      for name in ("nf-a", "nf-b")}
            a, b = _inspect(e, "nf-a"), _inspect(e, "nf-b")
            seen[which] = {
                "inside": inside["nf-b"], "same as the target": inside["nf-a"] == inside["nf-b"],
                "created": ([created[k] for k in PATHS], created["HostConfig"]["NetworkMode"] == f"container:{target}",
                            created["Config"]["Hostname"] == created["Id"][:12]),
                "started": ([b[k] == a[k] and b[k].startswith(os.path.dirname(a["LogPath"])) for k in PATHS],
                            b["Config"]["Hostname"], b["Config"]["Domainname"], b["HostConfig"]["NetworkMode"] ==
                            f"container:{target}", b["HostConfig"]["DnsSearch"]),
            }
        finally:
            cleanup(e, "nf-b", "nf-a")
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockyard"]["same as the target"] and seen["dockyard"]["created"] == (["", "", ""], True, True)
    assert "search s.example\nnameserver 192.0.2.53\noptions ndots:3\n" in seen["dockyard"]["inside"]


def test_a_running_joiner_sees_the_targets_files_rewritten_at_its_restart(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            e.cli("run", "-d", "--name", "nf-a", "-h", "ahost", "busybox", "sleep", "1000")
            e.cli("run", "-d", "--name", "nf-b", "--network", "container:nf-a", "busybox", "sleep", "1000")
            e.cli("restart", "-t", "0", "nf-a")
            script = "ls -i /etc/hosts /etc/resolv.conf /etc/hostname; cat /etc/hosts"
            a, b = (e.cli("exec", name, "sh", "-c", script).stdout_text for name in ("nf-a", "nf-b"))
            e.cli("restart", "-t", "0", "nf-b")
            again = e.cli("exec", "nf-b", "sh", "-c", script).stdout_text
            seen[which] = (a == b, a == again)
        finally:
            cleanup(e, "nf-b", "nf-a")
    assert seen["dockyard"] == seen["dockerd"] == (True, True)


def test_the_target_removed_under_a_joiner(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            target = e.cli("run", "-d", "--name", "nf-a", "-h", "ahost", "busybox", "sleep", "1000").stdout_text.strip()
            e.cli("run", "-d", "--name", "nf-b", "--network", "container:nf-a", "busybox", "sleep", "1000")
            paths = [_inspect(e, "nf-a")[k] for k in PATHS]
            e.cli("rm", "-f", "nf-a")
            still = e.cli("exec", "nf-b", "hostname").stdout_text
            api = api_of(e)
            api.stop("nf-b", timeout=0)
            status, message = outcome(lambda: api.start("nf-b"))
            b = _inspect(e, "nf-b")
            # dockerd's restart names the container as asked in front of the start's error
            restart = e.cli("restart", "-t", "0", "nf-b", check=False).stderr_text.strip()
            seen[which] = (still, [b[k] for k in PATHS] == paths, b["Config"]["Hostname"], status,
                           message.replace(target, "<id>"), b["State"]["Error"].replace(target, "<id>"),
                           restart.replace(target, "<id>"))
        finally:
            cleanup(e, "nf-b", "nf-a")
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockyard"][3:5] == (404, "No such container: <id>")


def test_removing_a_joiner_keeps_the_targets_files(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            e.cli("run", "-d", "--name", "nf-a", "--add-host", "db:192.0.2.7", "busybox", "sleep", "1000")
            e.cli("run", "--rm", "--network", "container:nf-a", "busybox", "true")
            paths = [_inspect(e, "nf-a")[k] for k in PATHS]
            e.cli("restart", "-t", "0", "nf-a")
            # -w: the container's own line names its short ID, which may hold "db"
            seen[which] = ([os.path.isfile(p) for p in paths],
                           e.cli("exec", "nf-a", "grep", "-w", "db", "/etc/hosts").stdout_text)
        finally:
            cleanup(e, "nf-a")
    assert seen["dockyard"] == seen["dockerd"] == ([True, True, True], "192.0.2.7\tdb\n")


def test_a_paused_or_host_network_target_can_be_joined(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            e.cli("run", "-d", "--name", "nf-a", "-h", "ahost", "busybox", "sleep", "1000")
            e.cli("pause", "nf-a")
            paused = e.cli("run", "--rm", "--network", "container:nf-a", "busybox", "hostname").stdout_text
            e.cli("run", "-d", "--name", "nf-h", "--network", "host", "busybox", "sleep", "1000")
            host = e.cli("run", "--rm", "--network", "container:nf-h", "busybox", "sh", "-c",
                         "hostname; cat /etc/hostname").stdout_text
            seen[which] = (paused, _inspect(e, "nf-h")["Config"]["Hostname"], host)
        finally:
            cleanup(e, "nf-a", "nf-h")
    name = socket.gethostname()
    assert seen["dockyard"] == seen["dockerd"] == ("ahost\n", name, f"{name}\n{name}\n")


CONFLICTS = {
    "hostname": ({"network_mode": "container:nf-a"}, {"hostname": "x"}),
    "links": ({"network_mode": "container:nf-a", "dns": ["192.0.2.53"], "links": {"nf-a": "al"}}, {}),
    "dns": ({"network_mode": "container:nf-a", "dns": ["192.0.2.53"], "extra_hosts": {"h": "192.0.2.7"}}, {}),
    "extra hosts": ({"network_mode": "container:nf-a", "extra_hosts": {"h": "192.0.2.7"}}, {}),
    "mac": ({"network_mode": "container:nf-a"}, {"mac_address": "02:42:ac:11:00:09"}),
    "mac with host": ({"network_mode": "host"}, {"mac_address": "02:42:ac:11:00:09"}),
    "publish": ({"network_mode": "container:nf-a", "port_bindings": {80: 80}}, {"ports": [80]}),
    "publish all": ({"network_mode": "container:nf-a", "publish_all_ports": True}, {}),
    "expose": ({"network_mode": "container:nf-a"}, {"ports": [80]}),
    "no container": ({"network_mode": "container:"}, {}),
    "missing target, before the image": ({"network_mode": "container:nosuch"}, {"hostname": "x", "image": "nosuch"}),
    "uts host": ({"uts_mode": "host"}, {"hostname": "x"}),
    "missing target": ({"network_mode": "container:nosuch"}, {}),
    "dns search and options": ({"network_mode": "container:nf-a", "dns_search": ["s.example"],
                                "dns_opt": ["ndots:2"]}, {"domainname": "d.example"}),
}


@pytest.mark.parametrize("case", CONFLICTS)
def test_what_a_network_mode_rules_out_at_create(engines, case) -> None:
    host_config, kwargs = CONFLICTS[case]
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        try:
            e.cli("create", "--name", "nf-a", "busybox", "true")
            image = kwargs.get("image", "busybox")
            created = outcome(lambda: api.create_container(
                image, ["true"], name="nf-b", host_config=api.create_host_config(**host_config),
                **{k: v for k, v in kwargs.items() if k != "image"}))
            seen[which] = (created[0], created[1] if created[0] != 200 else "created")
        finally:
            cleanup(e, "nf-b", "nf-a")
    assert seen["dockyard"] == seen["dockerd"]
    assert (seen["dockyard"][0] == 200) == (case in ("missing target", "dns search and options"))


def _resolv_conf(e, *args: str) -> str:
    return e.cli("run", "--rm", *args, "busybox", "cat", "/etc/resolv.conf").stdout_text


DNS_FLAGS = ("--dns", "192.0.2.53", "--dns", "192.0.2.54", "--dns-search", "s.example", "--dns-search", "t.example",
             "--dns-option", "ndots:3", "--dns-option", "rotate")


@pytest.mark.parametrize("flags", [DNS_FLAGS, ("--dns-search", "s.example"), ("--dns-search", ".", "--dns-option", "rotate"),
                                   ()], ids=["all", "search only", "no search", "none"])
@pytest.mark.parametrize("network", ["bridge", "none", "host"])
def test_the_dns_flags_in_resolv_conf(engines, network, flags) -> None:
    ours, theirs = (_resolv_conf(e, "--network", network, *flags) for e in (engines["dockyard"], engines["dockerd"]))
    assert ours == theirs
    if flags == DNS_FLAGS:
        assert ours == "search s.example t.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n" \
                       "options ndots:3 rotate\n"


def _by_kind(text: str) -> dict[str, list[str]]:
    """Each kind's lines in order (the embedded DNS's file puts search after its nameserver, dockerd
    20.10 before; comments are dockyard's own)."""
    kinds: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            kinds.setdefault(line.split()[0], []).append(line)
    return kinds


@pytest.mark.parametrize("flags", [("--dns-search", "s.example", "--dns-option", "ndots:3"),
                                   ("--dns-search", "s.example", "--dns-option", "rotate"),
                                   ("--dns", "2001:db8::53", "--dns", "192.0.2.53"), ()],
                         ids=["own ndots", "other option", "IPv6 server", "none"])
def test_the_dns_flags_with_the_embedded_dns(engines, flags) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            e.cli("network", "create", "nf-net")
            seen[which] = _by_kind(_resolv_conf(e, "--network", "nf-net", *flags))
        finally:
            e.cli("network", "rm", "nf-net", check=False)
    assert seen["dockyard"] == seen["dockerd"]
