"""dockyard's network commands side by side with the real docker CLI against one dockyardd."""

from __future__ import annotations

import json

import pytest
from test_cli import both, dockyard
from test_cli_containers import same


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    yield daemon
    daemon.cli("rm", "-f", "netuser", "netidle", check=False)
    daemon.cli("network", "prune", "-f", check=False)


@pytest.fixture(scope="module")
def nets(d):
    made = dockyard(d, "network", "create", "--label", "bare", "-o", "com.example.x=1",
                    "--subnet", "10.231.0.0/24", "--gateway", "10.231.0.1", "--ip-range", "10.231.0.128/25",
                    "--aux-address", "host1=10.231.0.5", "--internal", "net10")
    assert made.returncode == 0, made.stderr_text
    assert len(made.stdout_text.strip()) == 64
    other = dockyard(d, "network", "create", "--label", "team=b", "--attachable", "net2")
    assert other.returncode == 0, other.stderr_text
    return made.stdout_text.strip(), other.stdout_text.strip()


def test_create_sends_docker_ipam_config(d, nets) -> None:
    info = json.loads(d.cli("network", "inspect", "net10").stdout_text)[0]
    assert info["Id"] == nets[0]
    assert info["Labels"] == {"bare": ""}  # one label: docker prints a map's in random order
    assert info["Options"] == {"com.example.x": "1"}
    assert info["Internal"] is True
    cfg = info["IPAM"]["Config"][0]
    assert (cfg["Subnet"], cfg["Gateway"], cfg["IPRange"]) == ("10.231.0.0/24", "10.231.0.1", "10.231.0.128/25")
    assert json.loads(d.cli("network", "inspect", "net2").stdout_text)[0]["Attachable"] is True


def test_ls_and_inspect_match_docker(d, nets) -> None:
    for args in (["network", "ls"], ["network", "list", "-q"], ["network", "ls", "--no-trunc"],
                 ["network", "ls", "--format", "json"], ["network", "ls", "-q", "--no-trunc"],
                 ["network", "ls", "--format", "table {{.Name}}\t{{.IPv4}}\t{{.IPv6}}\t{{.Internal}}\t{{.Label \"team\"}}"],
                 ["network", "ls", "--format", "{{.Name}} {{.CreatedAt}} {{.Labels}}", "-f", "name=net2"],
                 ["network", "ls", "--format", "raw"], ["network", "ls", "-f", "label=team", "-q"],
                 ["network", "ls", "-f", "driver=bridge", "--format", "{{.Name}}"],
                 ["network", "ls", "-f", "type=custom", "--format", "{{.Name}}"],
                 ["network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}}", "net10", "net2"],
                 ["network", "inspect", "--format", "json", "net2"], ["network", "inspect", "-v", "net2"]):
        same(d, *args)
    ref, ours = both(d, "network", "inspect", "net10", "bridge")
    assert json.loads(ours.stdout_text) == json.loads(ref.stdout_text)


def test_errors_match_docker(d, nets) -> None:
    for args in (["network", "inspect", "net2", "nope"], ["network", "ls", "-f", "bogus=1"],
                 ["network", "ls", "x"], ["network", "create"], ["network", "create", "a", "b"],
                 ["network", "rm"], ["network", "inspect"], ["network", "connect", "net2"],
                 ["network", "disconnect", "net2"], ["network", "create", "net2"],
                 ["network", "create", "--gateway", "10.9.0.1", "gwonly"],
                 ["network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.8.0.1", "gwelse"],
                 ["network", "create", "--subnet", "10.9.0.0/16", "--subnet", "10.9.1.0/24", "overlap"],
                 ["network", "create", "--subnet", "10.9.0.0/24", "--ip-range", "10.7.0.0/25", "rangeelse"],
                 ["network", "create", "--subnet", "10.9.0.0/24", "--aux-address", "a=10.7.0.1", "auxelse"],
                 ["network", "rm", "nope"], ["network", "rm", "-f", "nope"],
                 ["network", "connect", "nope", "nobody"], ["network", "disconnect", "net2", "nobody"],
                 ["network", "create", "--gateway", "x", "n"], ["network", "create", "--subnet", "x", "n"],
                 ["network", "create", "--subnet", "10.9.0.0/24", "--ip-range", "y", "n"],
                 ["network", "create", "--subnet", "10.9.0.0/24", "--ip-range", "y/9", "n"],
                 ["network", "create", "--subnet", "10.9.0.0", "--gateway", "10.9.0.1", "n"],
                 ["network", "connect", "--driver-opt", "novalue", "net2", "c"]):
        same(d, *args, exit_code=None)
    same(d, "network", "ls", "--bogus", exit_code=125)


def test_connect_disconnect_rm_prune(d, nets) -> None:
    d.cli("run", "-d", "--name", "netuser", "busybox", "sleep", "1000")
    res = dockyard(d, "network", "connect", "--alias", "web,www", "--ip", "10.231.0.130", "net10", "netuser")
    assert (res.returncode, res.stdout_text) == (0, ""), res.stderr_text
    ep = json.loads(d.cli("inspect", "netuser").stdout_text)[0]["NetworkSettings"]["Networks"]["net10"]
    assert ep["IPAMConfig"]["IPv4Address"] == "10.231.0.130" and ep["IPAddress"] == "10.231.0.130"
    assert {"web", "www"} <= set(ep["Aliases"])
    out = d.cli("exec", "netuser", "ip", "-4", "addr").stdout_text
    assert "10.231.0.130" in out
    same(d, "network", "connect", "net10", "netuser", exit_code=None)  # already connected
    same(d, "network", "rm", "net10", exit_code=1)  # in use
    res = dockyard(d, "network", "disconnect", "net10", "netuser")
    assert (res.returncode, res.stdout_text) == (0, ""), res.stderr_text
    assert "net10" not in json.loads(d.cli("inspect", "netuser").stdout_text)[0]["NetworkSettings"]["Networks"]
    same(d, "network", "disconnect", "net10", "netuser", exit_code=None)  # not connected
    d.cli("create", "--name", "netidle", "--network", "net2", "busybox", "true")
    res = dockyard(d, "network", "prune", input=b"n\n")
    assert res.stdout_text == "WARNING! This will remove all custom networks not used by at least one container.\n" \
                              "Are you sure you want to continue? [y/N] "
    d.cli("network", "create", "spare")
    res = dockyard(d, "network", "prune", "-f")
    assert res.returncode == 0, res.stderr_text
    assert res.stdout_text.splitlines()[0] == "Deleted Networks:"
    assert sorted(res.stdout_text.splitlines()[1:-1]) == ["net10", "spare"] and res.stdout_text.endswith("\n\n")
    same(d, "network", "prune", "-f")  # nothing left to prune: no output at all
    d.cli("rm", "netidle")
    res = dockyard(d, "network", "rm", "net2", "nope")
    assert (res.returncode, res.stdout_text) == (1, "net2\n")
    assert res.stderr_text == "Error response from daemon: network nope not found\nexit status 1\n"
