"""The cgroup driver: dockerd's --exec-opt native.cgroupdriver and daemon.json exec-opts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import DOCKYARDD, Daemon, make_daemon
from dockyard import errors
from dockyard.runtime import cgroupdriver

SYSTEMD_IS_INIT = os.path.isdir("/run/systemd/system")


@pytest.fixture
def dd(tmp_path: Path):
    d = make_daemon(tmp_path)
    yield d
    d.teardown()


def start_error(dd: Daemon, *args: str, config: dict | None = None) -> str:
    conf = dd.base / "daemon.json"
    conf.write_text(json.dumps(config or {}))
    res = subprocess.run([DOCKYARDD, "-H", dd.host, "--data-root", dd.data_root, "--exec-root", dd.exec_root,
                          "--config-file", str(conf), *dd.bridge_args(), *args],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode != 0, res.stderr
    assert not os.path.exists(dd.data_root), "a refused start made the data root"
    return res.stderr


def test_cgroupfs_is_the_default(dd: Daemon, busybox_tar):
    dd.start()
    assert dd.cli("info", "--format", "{{.CgroupDriver}}").stdout_text.strip() == "cgroupfs"
    dd.cli("load", "-i", busybox_tar.path)
    cid = dd.cli("run", "-d", "busybox", "sleep", "30").stdout_text.strip()
    # runc made the cgroup itself, under /dockyard/<id>
    pid = dd.cli("inspect", "-f", "{{.State.Pid}}", cid).stdout_text.strip()
    assert any(line.endswith(f":/dockyard/{cid}") for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines())


def test_cgroupfs_by_flag_and_by_file(dd: Daemon):
    dd.extra_args = ["--exec-opt", "native.cgroupdriver=cgroupfs"]
    dd.start()
    assert dd.cli("info", "--format", "{{.CgroupDriver}}").stdout_text.strip() == "cgroupfs"
    dd.stop()
    dd.extra_args = []
    dd.config = {"exec-opts": ["native.cgroupdriver=cgroupfs"]}
    dd.start()
    assert dd.cli("info", "--format", "{{.CgroupDriver}}").stdout_text.strip() == "cgroupfs"


@pytest.mark.skipif(SYSTEMD_IS_INIT, reason="systemd is PID 1 here: the systemd driver is allowed")
def test_systemd_driver_refused_without_systemd(dd: Daemon):
    err = start_error(dd, "--exec-opt", "native.cgroupdriver=systemd")
    assert "native.cgroupdriver=systemd needs systemd running as init (PID 1)" in err
    err = start_error(dd, config={"exec-opts": ["native.cgroupdriver=systemd"]})
    assert "needs systemd running as init" in err


def test_bad_exec_opts_refused(dd: Daemon):
    assert "native.cgroupdriver option 'none' not supported" in \
        start_error(dd, "--exec-opt", "native.cgroupdriver=none")
    assert "unknown exec-opt 'native.bogus'" in start_error(dd, "--exec-opt", "native.bogus=1")
    assert "expected key=value" in start_error(dd, "--exec-opt", "native.cgroupdriver")
    assert "exec-opts: wrong type" in start_error(dd, config={"exec-opts": "native.cgroupdriver=cgroupfs"})
    assert "expected a list of key=value strings" in start_error(dd, config={"exec-opts": [1]})


def test_systemd_paths_as_runc_reads_them():
    """The contract with runc's --systemd-cgroup (checked in process: this host has no systemd to run it)."""
    assert cgroupdriver.systemd_cgroups_path("abc", "") == "system.slice:dockyard:abc"
    assert cgroupdriver.systemd_cgroups_path("abc", "machine.slice") == "machine.slice:dockyard:abc"
    for bad in ("/mygroup", "x.slice/y", ".slice", "a:b.slice"):
        with pytest.raises(errors.InvalidParameter, match="valid slice"):
            cgroupdriver.systemd_cgroups_path("abc", bad)
    cgroupdriver.use(cgroupdriver.SYSTEMD)
    try:
        from dockyard.runtime import spec
        assert spec.cgroups_path("abc") == "system.slice:dockyard:abc"
        assert cgroupdriver.runc_args() == ["--systemd-cgroup"]
    finally:
        cgroupdriver.use(cgroupdriver.CGROUPFS)
    assert cgroupdriver.runc_args() == []
