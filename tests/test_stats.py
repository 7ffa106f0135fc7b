"""docker stats and docker update through the real docker CLI and docker-py; the cgroup v2 reader on a fake tree."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.containers import stats as statsmod


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("run", "-d", "--name", "busy", "busybox", "sh", "-c",
               "while :; do :; done & head -c 30000000 /dev/zero | tail -c 1 >/dev/null; sleep 1000")
    yield daemon
    ids = daemon.cli("ps", "-aq", check=False).stdout_text.split()
    if ids:
        daemon.cli("rm", "-f", *ids, check=False)


def test_docker_py_stats_shape(d) -> None:
    s = d.client().containers.get("busy").stats(stream=False)
    assert s["name"] == "/busy" and len(s["id"]) == 64
    for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "blkio_stats", "pids_stats"):
        assert key in s
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"] > 0
    assert cpu["system_cpu_usage"] > pre["system_cpu_usage"] and cpu["online_cpus"] >= 1
    mem = s["memory_stats"]
    assert mem["usage"] > 0 and mem["limit"] > 0
    assert "cache" in mem["stats"] or "inactive_file" in mem["stats"]  # cgroup v1's name, or v2's
    assert s["pids_stats"]["current"] >= 2


def test_cli_stats_no_stream(d) -> None:
    out = d.cli("stats", "--no-stream", "--format", "{{json .}}", "busy").stdout_text
    row = json.loads(out)
    assert row["Name"] == "busy" and float(row["CPUPerc"].rstrip("%")) > 20
    assert row["PIDs"] != "0" and "/" in row["MemUsage"]


def test_update_memory_cpu_pids_restart(d) -> None:
    d.cli("update", "--memory", "64m", "--memory-swap", "128m", "--cpu-shares", "512", "--pids-limit", "50",
          "--restart", "on-failure:3", "busy")
    info = json.loads(d.cli("inspect", "busy").stdout_text)[0]
    hc = info["HostConfig"]
    assert (hc["Memory"], hc["CpuShares"], hc["PidsLimit"]) == (64 << 20, 512, 50)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    pid = info["State"]["Pid"]
    paths = statsmod.cgroup_paths(pid)
    mem_dir = os.path.join("/sys/fs/cgroup/memory", paths["memory"].lstrip("/"))
    with open(os.path.join(mem_dir, "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 64 << 20
    assert info["State"]["Status"] == "running"
    assert d.client().containers.get("busy").stats(stream=False)["memory_stats"]["limit"] == 64 << 20
    res = d.cli("update", "--restart", "bogus", "busy", check=False)
    assert res.returncode != 0 and "invalid restart policy: unknown policy 'bogus'" in res.stderr_text
    res = d.cli("update", "--restart", "always:2", "busy", check=False)
    assert res.returncode != 0 and "maximum retry count can only be used with 'on-failure'" in res.stderr_text
    assert json.loads(d.cli("inspect", "busy").stdout_text)[0]["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"


def test_update_below_usage_changes_nothing(d) -> None:
    d.cli("run", "-d", "--name", "hog", "--memory", "100m", "--memory-swap", "100m", "busybox", "sh", "-c",
          "head -c 40000000 /dev/zero | (read -r x; sleep 1000) & sleep 1000")
    res = d.cli("update", "--memory", "6m", "--memory-swap", "6m", "hog", check=False)
    if res.returncode == 0:  # the kernel reclaimed enough: then the limit must really be set
        assert json.loads(d.cli("inspect", "hog").stdout_text)[0]["HostConfig"]["Memory"] == 6 << 20
    else:
        assert json.loads(d.cli("inspect", "hog").stdout_text)[0]["HostConfig"]["Memory"] == 100 << 20
        assert d.cli("inspect", "-f", "{{.State.Status}}", "hog").stdout_text == "running\n"
    res = d.cli("update", "--memory", "1m", "hog", check=False)
    assert res.returncode != 0 and "Minimum memory limit allowed is 6MB" in res.stderr_text
    d.cli("rm", "-f", "hog")


def test_v2_reader_on_fake_tree(tmp_path) -> None:
    cg = tmp_path / "dockyard" / "abc"
    cg.mkdir(parents=True)
    (cg / "cpu.stat").write_text("usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\n"
                                 "nr_throttled 1\nthrottled_usec 30\n")
    (cg / "memory.current").write_text("1048576\n")
    (cg / "memory.max").write_text("max\n")
    (cg / "memory.stat").write_text("anon 4096\nfile 8192\ninactive_file 2048\n")
    (cg / "io.stat").write_text("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n")
    (cg / "pids.current").write_text("3\n")
    (cg / "pids.max").write_text("50\n")
    raw = statsmod.read_v2("/dockyard/abc", root=str(tmp_path))
    assert raw["cpu"]["cpu_usage"] == {"total_usage": 2_000_000, "usage_in_kernelmode": 500_000,
                                       "usage_in_usermode": 1_500_000}
    assert raw["cpu"]["throttling_data"] == {"periods": 4, "throttled_periods": 1, "throttled_time": 30_000}
    assert raw["memory"]["usage"] == 1048576 and raw["memory"]["limit"] == 0
    assert raw["memory"]["stats"]["inactive_file"] == 2048
    assert raw["blkio"]["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "read", "value": 100},
                                                          {"major": 8, "minor": 0, "op": "write", "value": 200}]
    assert raw["pids"] == {"current": 3, "limit": 50}
