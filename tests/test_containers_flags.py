"""`docker run` flags through the real CLI: what inspect shows and what the process sees inside."""

from __future__ import annotations

import json
import os
import resource

import pytest


def run(d, *args: str) -> str:
    return d.cli("run", "--rm", *args).stdout_text


def inspect(d, *args: str) -> dict:
    cid = d.cli("create", *args).stdout_text.strip()
    data = json.loads(d.cli("inspect", cid).stdout_text)[0]
    d.cli("rm", cid)
    return data


def test_env_file_workdir_user_entrypoint_hostname_label(d, tmp_path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=1\nB=two words\n")
    assert run(d, "--env-file", str(env_file), "busybox", "sh", "-c", 'echo "$A|$B"') == "1|two words\n"
    assert run(d, "-w", "/tmp/new", "busybox", "pwd") == "/tmp/new\n"
    assert run(d, "-u", "1000:1001", "busybox", "id").startswith("uid=1000 gid=1001")
    assert run(d, "-u", "nobody", "busybox", "id", "-un") == "nobody\n"
    assert run(d, "--entrypoint", "echo", "busybox", "via", "entrypoint") == "via entrypoint\n"
    assert run(d, "--hostname", "boxy", "busybox", "hostname") == "boxy\n"
    data = inspect(d, "--label", "a=b", "--hostname", "boxy", "-w", "/w", "-u", "7", "--entrypoint", "ls",
                   "busybox")
    cfg = data["Config"]
    assert (cfg["Labels"], cfg["Hostname"], cfg["WorkingDir"], cfg["User"], cfg["Entrypoint"]) == (
        {"a": "b"}, "boxy", "/w", "7", ["ls"])
    assert d.cli("ps", "-aq", "--filter", "label=a=b").stdout_text == ""


def test_init_read_only_tmpfs_shm(d) -> None:
    assert run(d, "--init", "busybox", "sh", "-c", "cat /proc/1/comm") != "sh\n"
    res = d.cli("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stderr_text
    out = run(d, "--read-only", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c",
              "touch /scratch/ok && grep ' /scratch ' /proc/mounts")
    assert "tmpfs" in out and "size=1024k" in out
    assert "size=8192k" in run(d, "--shm-size", "8m", "busybox", "grep", " /dev/shm ", "/proc/mounts")
    data = inspect(d, "--init", "--read-only", "--shm-size", "8m", "busybox")["HostConfig"]
    assert (data["Init"], data["ReadonlyRootfs"], data["ShmSize"]) == (True, True, 8 << 20)


def _cap_eff(text: str) -> int:
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("CapEff:")), 16)


def test_privileged_caps_security_opts(d) -> None:
    default = _cap_eff(run(d, "busybox", "cat", "/proc/self/status"))
    full = _cap_eff(run(d, "--privileged", "busybox", "cat", "/proc/self/status"))
    assert full > default and bin(full).count("1") >= 38
    host_devices = set(os.listdir("/dev"))
    seen = set(run(d, "--privileged", "busybox", "ls", "/dev").split())
    assert len(seen & host_devices) > 20  # host devices visible
    net_admin = 1 << 12
    assert _cap_eff(run(d, "--cap-add", "NET_ADMIN", "busybox", "cat", "/proc/self/status")) & net_admin
    chown = 1 << 0
    assert not _cap_eff(run(d, "--cap-drop", "CHOWN", "busybox", "cat", "/proc/self/status")) & chown
    res = d.cli("run", "--rm", "--cap-add", "BOGUS", "busybox", "true", check=False)
    assert res.returncode != 0 and "BOGUS" in res.stderr_text
    assert "NoNewPrivs:\t1" in run(d, "--security-opt", "no-new-privileges", "busybox", "cat", "/proc/self/status")
    assert "Seccomp:\t0" in run(d, "--security-opt", "seccomp=unconfined", "busybox", "cat", "/proc/self/status")
    assert "Seccomp:\t2" in run(d, "busybox", "cat", "/proc/self/status")


def test_ulimits(d) -> None:
    assert run(d, "--ulimit", "nofile=512:1024", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn") == "512\n1024\n"
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    res = d.cli("run", "--rm", "--ulimit", f"nofile={hard + 1}:{hard + 1}", "busybox", "true", check=False)
    assert res.returncode != 0 and "nofile" in res.stderr_text.lower()


def test_stop_signal_and_timeout(d) -> None:
    cid = d.cli("run", "-d", "--stop-signal", "USR1", "--stop-timeout", "2", "busybox", "sh", "-c",
                "trap 'echo got usr1; exit 7' USR1; while true; do sleep 0.1; done").stdout_text.strip()
    data = json.loads(d.cli("inspect", cid).stdout_text)[0]["Config"]
    assert (data["StopSignal"], data["StopTimeout"]) == ("USR1", 2)
    d.cli("stop", cid)
    assert d.cli("inspect", "-f", "{{.State.ExitCode}}", cid).stdout_text.strip() == "7"
    assert d.cli("logs", cid).stdout_text == "got usr1\n"
    d.cli("rm", cid)


def _cgroup_file(d, cid: str, controller: str, name: str) -> str:
    pid = d.cli("inspect", "-f", "{{.State.Pid}}", cid).stdout_text.strip()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            with open(f"/sys/fs/cgroup/{controllers}{path}/{name}") as f:
                return f.read().strip()
    path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
    with open(f"/sys/fs/cgroup{path}/{name}") as f:
        return f.read().strip()


def test_resources_reach_the_cgroups(d) -> None:
    cid = d.cli("run", "-d", "-m", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--cpu-shares", "512",
                "--cpuset-cpus", "0", "--pids-limit", "50", "busybox", "sleep", "100").stdout_text.strip()
    hc = json.loads(d.cli("inspect", cid).stdout_text)[0]["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["CpuShares"], hc["CpusetCpus"], hc["PidsLimit"]) \
        == (64 << 20, 128 << 20, 500_000_000, 512, "0", 50)
    if os.path.exists("/sys/fs/cgroup/memory"):  # cgroup v1 (this machine)
        assert _cgroup_file(d, cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert _cgroup_file(d, cid, "memory", "memory.memsw.limit_in_bytes") in (str(128 << 20),)
        assert _cgroup_file(d, cid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cgroup_file(d, cid, "cpu", "cpu.shares") == "512"
        assert _cgroup_file(d, cid, "cpuset", "cpuset.cpus") == "0"
        assert _cgroup_file(d, cid, "pids", "pids.max") == "50"
    d.cli("rm", "-f", cid)


def test_network_none_and_host(d) -> None:
    assert run(d, "--network", "none", "busybox", "ls", "/sys/class/net").split() == ["lo"]
    for _ in range(5):  # other tests add and remove veths meanwhile: a quiet moment is enough
        before = set(os.listdir("/sys/class/net"))
        inside = set(run(d, "--network", "host", "busybox", "ls", "/sys/class/net").split())
        after = set(os.listdir("/sys/class/net"))
        if before == after:
            break
    assert before & after <= inside <= before | after and len(inside) > 1


@pytest.mark.parametrize("flags, field", [
    (("-m", "-1"), "Memory"),
    (("--cpuset-cpus", "999"), "Requested CPUs are not available"),
    (("--cap-add", "NOPE"), "NOPE"),
    (("--restart", "sometimes"), "restart policy"),
    (("--stop-signal", "SIGNOPE"), "signal"),
    (("--cpu-shares", "-5"), "CpuShares"),
])
def test_bad_host_config_is_a_400_naming_the_field(d, flags, field) -> None:
    res = d.cli("create", *flags, "busybox", "true", check=False)
    assert res.returncode != 0
    assert field.lower() in res.stderr_text.lower(), res.stderr_text
