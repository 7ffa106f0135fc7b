"""Finding 15: ``-o com.docker.network.bridge.name=<existing interface>`` must not take over host interfaces.

An existing interface that is not a bridge is refused with dockerd's wording (it was given the
gateway address, then deleted by ``network rm``; ``eth0`` would have cut the host off). An existing
bridge may be adopted, as dockerd allows, but ``network rm`` leaves it and the addresses it had.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

OPT = "com.docker.network.bridge.name"


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _exists(name: str) -> bool:
    return _ip("link", "show", name).returncode == 0


def _addresses(name: str) -> list[str]:
    return [line.split()[3] for line in _ip("-o", "-4", "addr", "show", "dev", name).stdout.splitlines()]


@pytest.fixture
def host_link(request: pytest.FixtureRequest) -> Iterator[str]:
    """An interface of the test's own, of the kind asked for, deleted afterwards whatever happened."""
    kind, name = request.param
    _ip("link", "del", name)
    peer = ["peer", "name", name + "p"] if kind == "veth" else []  # no dummy module on every host
    assert _ip("link", "add", name, "type", kind, *peer).returncode == 0
    try:
        yield name
    finally:
        _ip("link", "del", name)


@pytest.mark.parametrize("host_link", [("veth", "dytestveth0")], indirect=True)
def test_existing_non_bridge_interface_is_refused(d, host_link: str) -> None:
    """The finding's case: a veth (given the gateway address, then deleted by ``network rm``)."""
    res = d.cli("network", "create", "-o", f"{OPT}={host_link}", "adoptdummy", check=False)
    assert res.returncode != 0
    assert f"existing interface {host_link} is not a bridge" in res.stderr_text, res.stderr_text
    assert "adoptdummy" not in d.cli("network", "ls", "--format", "{{.Name}}").stdout_text.split()
    assert _exists(host_link) and _addresses(host_link) == []  # untouched
    with pytest.raises(Exception) as err:  # and through the API: a 4xx, not a 500
        d.api().create_network("adoptdummy", options={OPT: host_link})
    assert getattr(err.value, "status_code", None) == 400, err.value


@pytest.mark.parametrize("host_link", [("bridge", "dytestbr0")], indirect=True)
def test_adopted_bridge_survives_network_rm(d, host_link: str) -> None:
    assert _ip("addr", "add", "10.251.77.1/24", "dev", host_link).returncode == 0
    d.cli("network", "create", "-o", f"{OPT}={host_link}", "--subnet", "10.251.78.0/24", "adoptbr")
    try:
        assert sorted(_addresses(host_link)) == ["10.251.77.1/24", "10.251.78.1/24"]
        d.cli("run", "--rm", "--network", "adoptbr", "busybox", "true")
    finally:
        d.cli("network", "rm", "adoptbr")
    assert _exists(host_link), "network rm deleted a bridge the daemon did not create"
    assert _addresses(host_link) == ["10.251.77.1/24"]  # its own address kept, the gateway taken away


def test_created_bridge_is_deleted_by_network_rm(d) -> None:
    d.cli("network", "create", "-o", f"{OPT}=dytestown0", "ownbr")
    assert _exists("dytestown0")
    d.cli("network", "rm", "ownbr")
    assert not _exists("dytestown0")


@pytest.mark.parametrize("host_link", [("veth", "dytestveth1")], indirect=True)
def test_default_bridge_on_non_bridge_interface_refused_at_start(fresh_daemon, host_link: str) -> None:
    """``-b <veth>``: dockerd will not start either; containers would have been plugged into it."""
    d = fresh_daemon
    d.extra_args += ["--bridge", host_link]
    try:
        with pytest.raises(RuntimeError) as err:
            d.start()
        assert f"existing interface {host_link} is not a bridge" in str(err.value)
        assert _addresses(host_link) == []
    finally:
        # nothing for the fixture's teardown to start again (its default network names the veth)
        d.stop()
        shutil.rmtree(d.data_root, ignore_errors=True)
