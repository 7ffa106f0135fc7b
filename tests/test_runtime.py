"""The runtime layer alone: OCI spec, conmon shims and real runc, on a busybox rootfs extracted here."""

from __future__ import annotations

import io
import os
import resource
import signal
import socket
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.runtime import spec as specmod
from dockyard.runtime.runc import Runc
from dockyard.runtime.shim import STDERR, ShimInfo, ShimManager, StartError
from fixtures.busybox import rootfs_layer

IMAGE = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=1"],
         "Cmd": ["sh"]}


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("rt")
    rootfs = base / "rootfs"
    with tarfile.open(fileobj=io.BytesIO(rootfs_layer())) as tar:
        tar.extractall(rootfs)
    env = RT(base, str(rootfs), Runc("runc", str(base / "exec" / "runc")), ShimManager(str(base / "exec")))
    yield env
    env.teardown_all()


class RT:
    def __init__(self, base: Path, rootfs: str, runc: Runc, shims: ShimManager) -> None:
        self.base, self.rootfs, self.runc, self.shims = base, rootfs, runc, shims
        self.ids: list[str] = []

    def create(self, config: dict, host_config: dict | None = None, *, stdin: bool = False,
               leave_stdin_open: bool = False) -> ShimInfo:
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        self.ids.append(cid)
        spec = specmod.build(container_id=cid, rootfs=self.rootfs, image_config=IMAGE, config=config,
                             host_config=host_config or {})
        self.shims.prepare(cid, spec)
        return self.shims.create(self.runc, cid, tty=bool(config.get("Tty")), stdin=stdin,
                                 log_path=str(self.base / f"{cid}.log"), leave_stdin_open=leave_stdin_open)

    def run(self, config: dict, host_config: dict | None = None) -> tuple[int, str, str]:
        info = self.create(config, host_config)
        sock = self.shims.attach(info.container_id)
        self.runc.start(info.container_id)
        out, err = read_all(sock)
        exit_ = self.shims.wait(info, 30)
        assert exit_ is not None
        self.remove(info.container_id)
        return exit_.code, out, err

    def remove(self, cid: str) -> None:
        self.runc.delete(cid, force=True)
        self.shims.cleanup(cid)

    def teardown_all(self) -> None:
        for cid in self.ids:
            if self.runc.state(cid):
                self.remove(cid)
            self.shims.cleanup(cid)


def read_all(sock: socket.socket, timeout: float = 30) -> tuple[str, str]:
    sock.settimeout(timeout)
    out, err = b"", b""
    while True:
        packet = sock.recv(65536)
        if not packet:
            break
        if packet[0] == STDERR:
            err += packet[1:]
        else:
            out += packet[1:]
    sock.close()
    return out.decode(), err.decode()


def read_until(sock: socket.socket, needle: bytes, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        packet = sock.recv(65536)
        if not packet:
            break
        data += packet[1:]
    return data


def cgroup_dirs(cid: str) -> list[str]:
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if cid in dirs:
            found.append(os.path.join(root, cid))
        # the container cgroups live one level under /dockyard: do not walk the whole tree
        dirs[:] = [d for d in dirs if d == "dockyard" or root == "/sys/fs/cgroup"]
    return found


def test_echo_exit_code_and_streams(rt: RT) -> None:
    code, out, err = rt.run({"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
    assert (code, out, err) == (3, "out\n", "err\n")


def test_log_file_has_both_streams(rt: RT) -> None:
    info = rt.create({"Cmd": ["sh", "-c", "echo one; echo two >&2"]})
    rt.runc.start(info.container_id)
    assert rt.shims.wait(info, 30).code == 0
    lines = Path(info.log_path).read_text().splitlines()
    assert [line.split(" ", 3)[1:] for line in lines] == [["stdout", "F", "one"], ["stderr", "F", "two"]]
    rt.remove(info.container_id)


def test_env_user_workdir_hostname(rt: RT) -> None:
    code, out, _ = rt.run({"Cmd": ["sh", "-c", "id; pwd; hostname; echo $FROM_IMAGE $MINE; echo $HOSTNAME"],
                           "User": "www-data", "WorkingDir": "/work/dir", "Env": ["MINE=yes", "FROM_IMAGE=2"]})
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("uid=33(www-data) gid=33(www-data)")
    assert lines[1] == "/work/dir"
    assert len(lines[2]) == 12 and lines[2] == lines[4]
    assert lines[3] == "2 yes"


def test_numeric_user_and_group(rt: RT) -> None:
    code, out, _ = rt.run({"Cmd": ["id"], "User": "1234:5"})
    assert code == 0 and out.startswith("uid=1234 gid=5(tty)")


def test_default_security(rt: RT) -> None:
    script = ("grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; unshare -m true && echo UNSHARED; "
              "cat /proc/kcore >/dev/null 2>&1 || echo NOKCORE; touch /proc/sys/x 2>/dev/null || echo ROSYS; "
              "ls /dev; ip -o link | cut -d: -f2")
    code, out, _ = rt.run({"Cmd": ["sh", "-c", script]})
    assert "CapEff:\t00000000a80425fb" in out  # dockerd's 14 default capabilities
    assert "Seccomp:\t2" in out
    assert "UNSHARED" not in out and "NOKCORE" in out and "ROSYS" in out
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx"):
        assert dev in out.split(), dev
    assert out.strip().splitlines()[-1].strip() == "lo"  # own net namespace, loopback only


def test_seccomp_unconfined_cap_add_no_new_privileges(rt: RT) -> None:
    code, out, _ = rt.run({"Cmd": ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                                                "unshare -m true && echo UNSHARED"]},
                          {"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"], "CapAdd": ["SYS_ADMIN"]})
    assert "Seccomp:\t0" in out and "NoNewPrivs:\t1" in out and "UNSHARED" in out


def test_capability_validation() -> None:
    assert "CAP_NET_ADMIN" in specmod.capabilities({"CapAdd": ["net_admin"]})
    assert specmod.capabilities({"CapDrop": ["ALL"], "CapAdd": ["CAP_CHOWN"]}) == ["CAP_CHOWN"]
    assert "CAP_KILL" not in specmod.capabilities({"CapDrop": ["kill"]})
    with pytest.raises(errors.InvalidParameter, match="CAP_BOGUS|BOGUS"):
        specmod.validate_host_config({"CapAdd": ["BOGUS"]})


def test_ulimits_inherited_and_bounded(rt: RT) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code, out, _ = rt.run({"Cmd": ["sh", "-c", "ulimit -Hn; ulimit -n"]})
    assert out.split() == [str(hard), str(soft)]
    code, out, _ = rt.run({"Cmd": ["sh", "-c", "ulimit -Hn; ulimit -n"]},
                          {"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]})
    assert out.split() == ["200", "100"]
    with pytest.raises(errors.InvalidParameter, match="nofile.*daemon"):
        specmod.validate_host_config({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": hard + 1}]})


def test_resources_reach_the_cgroup(rt: RT) -> None:
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
              "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || "
              "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max")
    code, out, _ = rt.run({"Cmd": ["sh", "-c", script]},
                          {"Memory": 64 * 1024 * 1024, "PidsLimit": 50, "NanoCpus": 500_000_000, "CpuShares": 512})
    assert code == 0
    if specmod.cgroup_version() == "1":
        assert out.split() == [str(64 * 1024 * 1024), "50", "50000", "512"]
    else:
        assert out.split()[:4] == [str(64 * 1024 * 1024), "50", "50000", "100000"]


def test_readonly_rootfs_tmpfs_shm_init(rt: RT) -> None:
    script = "touch /x 2>/dev/null || echo RO; touch /scratch/x && echo TMPFS; df -k /dev/shm | tail -1; cat /proc/1/comm"
    code, out, _ = rt.run({"Cmd": ["sh", "-c", script]},
                          {"ReadonlyRootfs": True, "Tmpfs": {"/scratch": "size=1m"}, "ShmSize": 8 * 1024 * 1024,
                           "Init": True})
    lines = out.splitlines()
    assert lines[0] == "RO" and lines[1] == "TMPFS"
    assert lines[2].split()[1] == "8192"
    assert lines[3] in ("docker-init", "tini", "tini-static")


def test_host_network_shares_the_host_interfaces(rt: RT) -> None:
    host_links = {line.split(":")[1].strip().split("@")[0] for line in
                  os.popen("ip -o link").read().splitlines()}
    code, out, _ = rt.run({"Cmd": ["sh", "-c", "ip -o link | cut -d: -f2"]}, {"NetworkMode": "host"})
    assert {x.strip().split("@")[0] for x in out.split()} == host_links


def test_command_merge_rules() -> None:
    assert specmod.command({"Cmd": ["echo", "x"]}, {"Entrypoint": ["/ep"], "Cmd": ["sh"]}) == ["/ep", "echo", "x"]
    assert specmod.command({}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}) == ["/ep", "a"]
    assert specmod.command({"Entrypoint": ["/x"]}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}) == ["/x"]
    assert specmod.command({"Entrypoint": [""], "Cmd": ["ls"]}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}) == ["ls"]
    with pytest.raises(errors.InvalidParameter, match="No command specified"):
        specmod.command({}, {})


def test_missing_executable_surfaces_runc_message(rt: RT) -> None:
    with pytest.raises(StartError, match=r'exec: "nope": executable file not found in \$PATH'):
        rt.create({"Cmd": ["nope"]})
    cid = rt.ids[-1]
    rt.remove(cid)
    assert not cgroup_dirs(cid)


def test_stdin_through_the_shim_and_eof(rt: RT) -> None:
    info = rt.create({"Cmd": ["sh", "-c", "cat; echo done"], "OpenStdin": True}, stdin=True)
    sock = rt.shims.attach(info.container_id)
    rt.runc.start(info.container_id)
    sock.sendall(b"hello\n")
    sock.shutdown(socket.SHUT_WR)  # stdin EOF
    out, _ = read_all(sock)
    assert out == "hello\ndone\n"
    assert rt.shims.wait(info, 10).code == 0
    rt.remove(info.container_id)


def test_tty_resize(rt: RT) -> None:
    info = rt.create({"Cmd": ["sh"], "Tty": True, "OpenStdin": True}, stdin=True)
    sock = rt.shims.attach(info.container_id)
    rt.runc.start(info.container_id)
    rt.shims.resize(info.container_id, 33, 101)
    time.sleep(0.1)
    sock.sendall(b"stty size; exit 7\n")
    data = read_until(sock, b"33 101")
    assert b"33 101" in data
    assert rt.shims.wait(info, 10).code == 7
    sock.close()
    rt.remove(info.container_id)


def test_kill_pause_resume(rt: RT) -> None:
    info = rt.create({"Cmd": ["sleep", "1000"]})
    rt.runc.start(info.container_id)
    rt.runc.pause(info.container_id)
    assert rt.runc.state(info.container_id)["status"] == "paused"
    rt.runc.resume(info.container_id)
    assert rt.runc.state(info.container_id)["status"] == "running"
    rt.runc.kill(info.container_id, signal.SIGTERM)  # sleep as pid 1 ignores TERM, as in docker
    assert rt.shims.wait(info, 0.5) is None
    rt.runc.kill(info.container_id, signal.SIGKILL)
    assert rt.shims.wait(info, 10).code == 137
    rt.remove(info.container_id)


def test_shim_outlives_its_parent_and_is_found_again(rt: RT) -> None:
    info = rt.create({"Cmd": ["sleep", "1000"]})
    rt.runc.start(info.container_id)
    # a new manager stands for dockyardd after a restart: it knows only the files in the exec root
    again = ShimManager(rt.shims.exec_root)
    assert info.container_id in again.known()
    found = again.load(info.container_id)
    assert found == info and again.alive(found)
    with open(f"/proc/{found.conmon_pid}/stat") as f:
        assert f.read().split(") ")[1].split()[1] != str(os.getpid())  # not our child
    assert os.getsid(found.conmon_pid) != os.getsid(0)
    assert rt.runc.state(info.container_id)["status"] == "running"
    rt.runc.kill(info.container_id, signal.SIGKILL)
    exit_ = again.wait(found, 10)
    assert exit_.code == 137 and not again.alive(found)
    rt.remove(info.container_id)


def test_dead_shim_gives_a_defined_exit(rt: RT) -> None:
    info = rt.create({"Cmd": ["sleep", "1000"]})
    rt.runc.start(info.container_id)
    os.kill(info.conmon_pid, signal.SIGKILL)
    exit_ = rt.shims.wait(info, 10)
    assert exit_.code == 255 and "shim" in exit_.error
    rt.remove(info.container_id)  # delete --force kills what the shim left running
    assert rt.runc.state(info.container_id) is None


def test_teardown_leaves_nothing(rt: RT) -> None:
    info = rt.create({"Cmd": ["sleep", "1000"]})
    cid = info.container_id
    rt.runc.start(cid)
    assert cgroup_dirs(cid)
    rt.runc.kill(cid, signal.SIGKILL)
    rt.shims.wait(info, 10)
    rt.remove(cid)
    assert not cgroup_dirs(cid)
    assert cid not in Path("/proc/self/mountinfo").read_text()
    assert not os.path.exists(rt.shims.bundle(cid)) and not os.path.exists(rt.shims.exit_file(cid))
    assert not os.path.lexists(os.path.join(rt.shims.socket_dir, cid[:12]))
    assert not any(cid in p for p in os.listdir(rt.runc.root))
    for pid in (info.pid, info.conmon_pid):
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"


def _rss_pss_kb(pid: int) -> tuple[int, int]:
    rss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
    pss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/smaps_rollup") if line.startswith("Pss:"))
    return rss, pss


def test_idle_shim_memory(rt: RT) -> None:
    """Half of containerd-shim-runc-v2's ~13 MB is the budget per idle container."""
    infos = [rt.create({"Cmd": ["sleep", "1000"], "Tty": tty, "OpenStdin": True}, stdin=True)
             for tty in (False, True)]
    for info in infos:
        rt.runc.start(info.container_id)
    time.sleep(0.3)
    for info in infos:
        rss, pss = _rss_pss_kb(info.conmon_pid)
        print(f"shim tty={info.tty}: VmRSS {rss} kB, Pss {pss} kB")
        assert rss < 6500
        rt.runc.kill(info.container_id, signal.SIGKILL)
        rt.shims.wait(info, 10)
        rt.remove(info.container_id)


def _stub_runc(tmp_path: Path, state_status: str | None) -> Runc:
    """A runc whose kill fails as runc does on a container exiting under it (its cgroup removed)."""
    state = f'echo \'{{"status": "{state_status}"}}\'; exit 0' if state_status else "exit 1"
    stub = tmp_path / "runc"
    stub.write_text("#!/bin/sh\n"
                    "for a; do last=$a; case $a in kill) cmd=kill;; state) cmd=state;; esac; done\n"
                    "case $cmd in\n"
                    "kill) echo 'time=\"x\" level=error msg=\"lstat /sys/fs/cgroup/devices/dockyard/c1: "
                    "no such file or directory\"' >&2; exit 1;;\n"
                    f"state) {state};;\n"
                    "esac\n")
    stub.chmod(0o755)
    return Runc(str(stub), str(tmp_path / "root"))


@pytest.mark.parametrize("status", [None, "stopped"])
def test_kill_of_a_container_that_exited_meanwhile_is_a_conflict(tmp_path: Path, status: str | None) -> None:
    with pytest.raises(errors.Conflict):
        _stub_runc(tmp_path, status).kill("c1", signal.SIGKILL, all_processes=True)


def test_kill_failure_of_a_running_container_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.DockyardError) as info:
        _stub_runc(tmp_path, "running").kill("c1", signal.SIGKILL)
    assert not isinstance(info.value, errors.Conflict)
