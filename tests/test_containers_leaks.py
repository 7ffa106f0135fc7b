"""Teardown leaves nothing: 200 run/rm -f cycles over bridge (with a published port), none, host and a volume."""

from __future__ import annotations

import concurrent.futures
import glob
import os
import subprocess

CYCLES = 200
WORKERS = 4
CGROUP_PARENT = "dockyard"


def _listing(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _snapshot(d, bridge: str) -> dict[str, object]:
    """Everything a container's life touches on the host, restricted to what belongs to this daemon."""
    base = str(d.base)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = sorted(line.split()[4] for line in f if base in line)
    conmons = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"conmon" and d.exec_root.encode() in b" ".join(argv):
            conmons.append(pid)
    rules = sorted(line for table in ("filter", "nat")
                   for line in subprocess.run(["iptables-save", "-t", table], capture_output=True,
                                              text=True).stdout.splitlines()
                   if bridge in line.split())
    daemon_pid = d.proc.pid
    return {
        "mounts": mounts,
        "conmon": conmons,
        "veths on the bridge": _listing(f"/sys/class/net/{bridge}/brif"),
        "iptables": rules,
        "netns files": _listing(os.path.join(d.exec_root, "netns")),
        "bundles": _listing(os.path.join(d.exec_root, "containers")),
        "exit files": _listing(os.path.join(d.exec_root, "exits")),
        "attach sockets": _listing(os.path.join(d.exec_root, "s")),
        "runc state": _listing(os.path.join(d.exec_root, "runtime-runc")),
        "container dirs": _listing(os.path.join(d.data_root, "containers")),
        "volumes": sorted(v["Name"] for v in d.api().volumes()["Volumes"] or []),
        "daemon threads": len(os.listdir(f"/proc/{daemon_pid}/task")),
        "daemon fds": len(os.listdir(f"/proc/{daemon_pid}/fd")),
    }


def _cycle(api, i: int) -> str:
    kind = i % 4
    kwargs: dict[str, object] = {}
    host: dict[str, object] = {}
    if kind == 0:
        kwargs["ports"] = [80]
        host = {"port_bindings": {80: ("127.0.0.1", None)}}
    elif kind == 1:
        host = {"network_mode": "none", "ipc_mode": "shareable"}  # a daemon-side /dev/shm mount
    elif kind == 2:
        host = {"network_mode": "host"}
    else:
        kwargs["volumes"] = ["/anon"]
        host = {"binds": ["leakvol:/named"]}
    c = api.create_container("busybox", ["sleep", "1000"], host_config=api.create_host_config(**host), **kwargs)
    api.start(c["Id"])
    api.remove_container(c["Id"], force=True, v=True)
    return c["Id"]


def test_200_run_rm_cycles_leave_nothing(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("volume", "create", "leakvol")
    bridge = d.bridge_args()[1]
    api = d.api()
    for i in range(4):  # warm up: the bridge, its iptables chains, the pools exist from here on
        _cycle(api, i)
    before = _snapshot(d, bridge)
    # the census sees a live container in every category it checks (so a leak would show)
    probe = api.create_container("busybox", ["sleep", "1000"], ports=[80],
                                 host_config=api.create_host_config(port_bindings={80: ("127.0.0.1", None)},
                                                                    binds=["leakvol:/named"]))
    api.start(probe["Id"])
    during = _snapshot(d, bridge)
    api.remove_container(probe["Id"], force=True, v=True)
    for key in ("mounts", "conmon", "veths on the bridge", "iptables", "netns files", "bundles",
                "attach sockets", "runc state", "container dirs"):
        assert during[key] != before[key], key
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        ids = list(pool.map(lambda i: _cycle(d.api(), i), range(CYCLES)))
    after = _snapshot(d, bridge)
    assert d.cli("ps", "-aq").stdout_text == ""
    for key in before:
        if key in ("daemon threads", "daemon fds"):
            # pools may keep a few idle workers: a leak per container would be hundreds
            assert after[key] <= before[key] + 8, (key, before[key], after[key])  # type: ignore[operator]
        else:
            assert after[key] == before[key], key
    leftover_cgroups = [p for cid in ids for p in glob.glob(f"/sys/fs/cgroup/*/{CGROUP_PARENT}/{cid}")]
    assert leftover_cgroups == []
    leftover = [p for cid in ids for p in glob.glob(f"{d.base}/**/*{cid[:12]}*", recursive=True)]
    assert leftover == []
