"""``--add-host`` (HostConfig.ExtraHosts) in the container's /etc/hosts, side by side with the reference dockerd."""

from __future__ import annotations

import re

import pytest

from dockerd_side import needs_dockerd

pytestmark = needs_dockerd
ADDRESS = re.compile(r"\b\d+\.\d+\.\d+\.\d+\b")


REF_BRIDGE = True  # the reference dockerd gets a bridge of its own (conftest's ref fixture)


def _hosts(e, *args: str) -> list[str]:
    return e.cli("run", "--rm", *args, "busybox", "cat", "/etc/hosts").stdout_text.splitlines()


@pytest.mark.parametrize("network", ["bridge", "none"])
def test_extra_hosts_in_place_as_dockerd(d, ref, network) -> None:
    args = ("--network", network, "-h", "me", "--add-host", "db:10.1.2.3", "--add-host", "v6:fd00::7",
            "--add-host", "gw:host-gateway")
    ours, theirs = _hosts(d, *args), _hosts(ref, *args)
    # the addresses of the container and of each engine's gateway differ; the lines and their order do not
    assert [ADDRESS.sub("IP", line) for line in ours if "10.1.2.3" not in line] == \
        [ADDRESS.sub("IP", line) for line in theirs if "10.1.2.3" not in line]
    assert "10.1.2.3\tdb" in ours and "fd00::7\tv6" in ours
    gateway = d.api().inspect_network("bridge")["IPAM"]["Config"][0]["Gateway"]
    assert f"{gateway}\tgw" in ours


def test_extra_hosts_with_host_network(d) -> None:
    lines = _hosts(d, "--network", "host", "--add-host", "db:10.1.2.3")
    assert lines[-1] == "10.1.2.3\tdb"
    with open("/etc/hosts") as f:
        assert lines[:-1] == f.read().splitlines()
