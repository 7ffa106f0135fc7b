"""Container state and create-time defaults, side by side with the reference dockerd (issue 15):
kill waits for a SIGKILL to land, and what inspect and the running container show for the
fields a client leaves unset (ShmSize, PidsLimit, IpcMode, masked paths, netns sysctls, domainname)."""

from __future__ import annotations

import os

import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def test_kill_returns_once_the_container_is_dead(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        c = api.create_container("busybox", ["sh", "-c", "trap '' TERM; sleep 1000"], name="killed")
        try:
            api.start(c)
            api.kill(c)  # SIGKILL: dockerd waits for the exit before answering
            state = api.inspect_container(c)["State"]
            # another signal is sent and answered at once, and a stopped container refuses it
            after = outcome(lambda: api.kill(c, signal="SIGUSR1"))
            seen[which] = ({k: state[k] for k in ("Status", "Running", "ExitCode", "Pid")}, after[0])
        finally:
            cleanup(e, "killed")
    assert seen["dockyard"] == seen["dockerd"] == ({"Status": "exited", "Running": False, "ExitCode": 137,
                                                    "Pid": 0}, 409)


def test_kill_with_another_signal_does_not_wait(engines) -> None:
    for e in engines.values():
        api = api_of(e)
        c = api.create_container("busybox", ["sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.1; done"],
                                 name="usr1")
        try:
            api.start(c)
            api.kill(c, signal="SIGUSR1")
            assert api.wait(c, timeout=20)["StatusCode"] == 7
        finally:
            cleanup(e, "usr1")


@pytest.mark.parametrize("version", ["1.39", "1.41"])
def test_host_config_defaults_in_inspect(engines, version) -> None:
    keys = ("ShmSize", "PidsLimit", "IpcMode", "CgroupnsMode")
    got = {}
    for which, e in engines.items():
        api = api_of(e, version)
        rows = []
        for extra in ({}, {"PidsLimit": 0}, {"PidsLimit": -1}, {"PidsLimit": 64, "ShmSize": 1 << 20},
                      {"Privileged": True}, {"MaskedPaths": [], "ReadonlyPaths": []}):
            c = api.create_container("busybox", "true", host_config={"ShmSize": 0, **extra})
            hc = api.inspect_container(c)["HostConfig"]
            api.remove_container(c)
            rows.append(({k: hc.get(k) for k in keys}, hc["MaskedPaths"], hc["ReadonlyPaths"]))
        got[which] = rows
    assert [r[0] for r in got["dockyard"]] == [r[0] for r in got["dockerd"]]
    assert got["dockerd"][0][0]["IpcMode"] == ("shareable" if version == "1.39" else "private")
    for (_, masked, readonly), (_, ref_masked, ref_readonly) in zip(got["dockyard"], got["dockerd"]):
        assert readonly == ref_readonly
        if ref_masked is None or ref_masked == []:
            assert masked == ref_masked
        else:  # dockyard also masks what newer dockerd masks (powercap, interrupts, thermal_throttle)
            assert set(ref_masked) <= set(masked)


def _probe(e, *args: str) -> str:
    return e.cli("run", "--rm", *args).stdout_text


def test_netns_sysctls_and_domainname_inside(engines) -> None:
    probe = ("busybox", "sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start "
             "/proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/domainname")
    host_view = _probe(engines["dockerd"], "--net", "host", *probe)
    assert host_view.split("\n")[0] == open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read().strip()
    for args in (["--net", "none"], ["--net", "host"], ["--domainname", "example.org"],
                 ["--sysctl", "net.ipv4.ip_unprivileged_port_start=80"]):
        ours, ref = _probe(engines["dockyard"], *args, *probe), _probe(engines["dockerd"], *args, *probe)
        assert ours == ref, args
    # the hosts entry names the container by its FQDN first, as dockerd writes it on its bridge
    # ("<ip>\t<host>.<domain> <host>"; this module's dockerd runs without one)
    own = _probe(engines["dockyard"], "-h", "box", "--domainname", "example.org", "busybox", "tail", "-n1",
                 "/etc/hosts")
    assert own.split()[1:] == ["box.example.org", "box"]
    # a container that joins another's netns does not set them (they are the other's namespace's)
    for e in engines.values():
        e.cli("run", "-d", "--name", "netowner", "--net", "none", "--sysctl",
              "net.ipv4.ip_unprivileged_port_start=99", "busybox", "sleep", "100")
    try:
        views = [_probe(e, "--net", "container:netowner", *probe) for e in engines.values()]
        assert views[0] == views[1] and views[0].startswith("99\n")
    finally:
        for e in engines.values():
            cleanup(e, "netowner")
    assert os.path.exists("/proc/sys/net/ipv4/ping_group_range")
