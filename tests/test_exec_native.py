"""Execs without a TTY run without runc (containers/nsexec.py): they must be confined exactly as runc's.

Each check compares a plain exec (the daemon's own setns path) with ``exec -t`` (runc) in the
same container: identity, capabilities, seccomp, no_new_privs, ignored signals, cgroups, rlimits.
"""

from __future__ import annotations

import os
import time

import pytest

PROBE = ("id; echo HOME=$HOME; umask; grep -E '^(Cap|Seccomp|NoNewPrivs|SigIgn|SigBlk)' /proc/self/status; "
         "ulimit -a | grep -v -- -n; cat /proc/self/cgroup; cat /proc/self/oom_score_adj; env | sort")


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("run", "-d", "--name", "nbox", "--ulimit", "nofile=900:1000", "--oom-score-adj", "7",
               "--cap-add", "SYS_PTRACE", "--cap-drop", "NET_RAW", "busybox", "sleep", "1000")
    daemon.cli("run", "-d", "--name", "nnp", "--security-opt", "no-new-privileges", "-u", "nobody", "busybox",
               "sleep", "1000")
    yield daemon
    daemon.cli("rm", "-f", "nbox", "nnp", check=False)


def _both(d, *args: str) -> tuple[str, str]:
    native = d.cli("exec", *args, "sh", "-c", PROBE).stdout_text
    runc = d.cli("exec", "-t", *args, "sh", "-c", PROBE).stdout_text.replace("\r\n", "\n")
    return native, runc


@pytest.mark.parametrize("args", [("nbox",), ("-u", "nobody", "-w", "/tmp", "-e", "X=1", "nbox"),
                                  ("--privileged", "nbox"), ("nnp",), ("-u", "0", "nnp")])
def test_confined_as_runc_confines(d, args) -> None:
    native, runc = _both(d, *args)
    assert native == runc
    assert "Seccomp:\t2" in native or "--privileged" in args


def test_rlimits_applied(d) -> None:
    # (not compared with runc: Go 1.19 raises runc's own NOFILE soft limit, which at times leaks into its exec)
    assert d.cli("exec", "-u", "nobody", "nbox", "sh", "-c", "ulimit -n; ulimit -Hn").stdout_text == "900\n1000\n"


def test_seccomp_denies_what_the_profile_denies(d) -> None:
    res = d.cli("exec", "nbox", "unshare", "-U", "true", check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stderr_text


def test_no_daemon_fd_reaches_the_process_or_its_runner(d) -> None:
    fds = d.cli("exec", "nbox", "ls", "/proc/self/fd").stdout_text.split()
    assert sorted(fds) == ["0", "1", "2", "3"]  # 3: ls's own directory
    api = d.api()
    eid = api.exec_create("nbox", ["sleep", "30"])["Id"]
    api.exec_start(eid, detach=True)
    pid = api.exec_inspect(eid)["Pid"]
    assert pid > 0
    with open(f"/proc/{pid}/status") as f:
        runner = int(next(line.split()[1] for line in f if line.startswith("PPid:")))
    assert len(os.listdir(f"/proc/{runner}/fd")) <= 1  # its log, nothing of the daemon's
    os.kill(pid, 9)
    deadline = time.time() + 5
    while api.exec_inspect(eid)["Running"] and time.time() < deadline:
        time.sleep(0.05)
    assert api.exec_inspect(eid)["ExitCode"] == 137


def test_errors_in_runc_words(d) -> None:
    res = d.cli("exec", "-w", "/nonexistent", "nbox", "true", check=False)
    assert res.returncode != 0
    assert 'chdir to cwd ("/nonexistent") set in config.json failed' in res.stdout_text + res.stderr_text
    res = d.cli("exec", "nbox", "/etc", check=False)
    assert res.returncode == 126
    res = d.cli("exec", "nbox", "/no/such", check=False)
    assert res.returncode == 127 and "no such file or directory" in res.stdout_text + res.stderr_text


def test_exec_dies_with_the_container(d) -> None:
    d.cli("run", "-d", "--name", "short", "busybox", "sleep", "1000")
    api = d.api()
    eid = api.exec_create("short", ["sleep", "1000"])["Id"]
    api.exec_start(eid, detach=True)
    pid = api.exec_inspect(eid)["Pid"]
    d.cli("rm", "-f", "short")
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
