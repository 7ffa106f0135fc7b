"""docker exec through the real docker CLI and docker-py."""

from __future__ import annotations

import json
import time

import pytest


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    yield daemon
    ids = daemon.cli("ps", "-aq", check=False).stdout_text.split()
    if ids:
        daemon.cli("rm", "-f", *ids, check=False)


def test_exec_output_exit_code_env_user_workdir(d) -> None:
    res = d.cli("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5", check=False)
    assert (res.returncode, res.stdout_text, res.stderr_text) == (5, "out\n", "err\n")
    res = d.cli("exec", "-e", "FOO=bar", "-u", "nobody", "-w", "/etc", "box", "sh", "-c", 'echo $FOO $(id -u) $PWD')
    assert res.stdout_text == "bar 65534 /etc\n"


def test_exec_stdin(d) -> None:
    assert d.cli("exec", "-i", "box", "cat", input="piped\n").stdout_text == "piped\n"


def test_exec_joins_namespaces_and_cgroup(d) -> None:
    pid = json.loads(d.cli("inspect", "box").stdout_text)[0]["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        init_cgroups = f.read()
    res = d.cli("exec", "box", "sh", "-c", "hostname; cat /proc/self/cgroup; echo $$")
    lines = res.stdout_text.splitlines()
    assert lines[0] == json.loads(d.cli("inspect", "box").stdout_text)[0]["Id"][:12]
    assert "\n".join(lines[1:-1]) + "\n" == init_cgroups
    assert int(lines[-1]) < 100  # a pid of the container's namespace


def test_exec_privileged(d) -> None:
    plain = d.cli("exec", "box", "grep", "CapEff", "/proc/self/status").stdout_text
    priv = d.cli("exec", "--privileged", "box", "grep", "CapEff", "/proc/self/status").stdout_text
    plain_caps, priv_caps = int(plain.split()[1], 16), int(priv.split()[1], 16)
    sys_admin = 1 << 21
    assert not plain_caps & sys_admin and priv_caps & sys_admin and priv_caps & plain_caps == plain_caps


def test_exec_missing_binary(d) -> None:
    res = d.cli("exec", "box", "nope", check=False)
    assert res.returncode == 127
    assert 'exec: "nope": executable file not found in $PATH' in res.stdout_text + res.stderr_text
    res = d.cli("exec", "box", "/etc/passwd", check=False)
    assert res.returncode == 126


def test_exec_detached_and_inspect(d) -> None:
    api = d.api()
    eid = api.exec_create("box", ["sh", "-c", "sleep 0.3; exit 3"])["Id"]
    api.exec_start(eid, detach=True)
    info = api.exec_inspect(eid)
    assert info["Running"] and info["Pid"] > 0 and info["ProcessConfig"]["entrypoint"] == "sh"
    deadline = time.time() + 5
    while api.exec_inspect(eid)["Running"] and time.time() < deadline:
        time.sleep(0.05)
    assert api.exec_inspect(eid)["ExitCode"] == 3
    d.cli("exec", "-d", "box", "touch", "/tmp/detached")
    deadline = time.time() + 5
    while d.cli("exec", "box", "test", "-e", "/tmp/detached", check=False).returncode and time.time() < deadline:
        time.sleep(0.05)
    assert d.cli("exec", "box", "test", "-e", "/tmp/detached", check=False).returncode == 0


def test_attached_exec_inspect_while_running_and_at_end(d) -> None:
    # an attached start streams before the daemon knows the pid: inspect must still show it, and the exit
    # code must be there as soon as the stream ends (the CLI inspects right after, without retrying)
    api = d.api()
    eid = api.exec_create("box", ["sh", "-c", "echo ready; sleep 1; exit 4"])["Id"]
    stream = api.exec_start(eid, stream=True)
    assert next(stream) == b"ready\n"
    info = api.exec_inspect(eid)
    assert info["Running"] and info["ExitCode"] is None
    with open(f"/proc/{info['Pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sh", b"-c"]
    assert b"".join(stream) == b""
    info = api.exec_inspect(eid)
    assert (info["Running"], info["ExitCode"]) == (False, 4)


def test_docker_py_exec_run(d) -> None:
    box = d.client().containers.get("box")
    code, out = box.exec_run(["sh", "-c", "echo hi; exit 2"])
    assert (code, out) == (2, b"hi\n")
    code, out = box.exec_run("tty", tty=True)
    assert out.startswith(b"/dev/pts/")


def test_exec_stopped_paused_missing(d) -> None:
    d.cli("create", "--name", "idle", "busybox", "true")
    res = d.cli("exec", "idle", "true", check=False)
    assert res.returncode != 0 and "is not running" in res.stderr_text
    d.cli("pause", "box")
    try:
        res = d.cli("exec", "box", "true", check=False)
        assert "is paused, unpause the container before exec" in res.stderr_text
    finally:
        d.cli("unpause", "box")
    res = d.cli("exec", "nosuch", "true", check=False)
    assert "No such container: nosuch" in res.stderr_text


def test_exec_dies_with_container(d) -> None:
    d.cli("run", "-d", "--name", "short", "busybox", "sleep", "1000")
    d.cli("exec", "-d", "short", "sleep", "777")
    time.sleep(0.3)
    assert "sleep 777" in d.cli("top", "short").stdout_text
    d.cli("kill", "short")
    time.sleep(0.3)
    import subprocess
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 777" not in ps
