"""Containers over the API, driven by the real docker CLI and docker-py."""

from __future__ import annotations

import json
import signal
import time



def test_run_rm_echo(d) -> None:
    res = d.cli("run", "--rm", "busybox", "echo", "hello")
    assert res.stdout_text == "hello\n"
    assert d.cli("ps", "-aq").stdout_text == ""


def test_exit_code_and_stderr(d) -> None:
    res = d.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (res.returncode, res.stdout_text, res.stderr_text) == (3, "out\n", "err\n")


def test_stdin_pipe(d) -> None:
    res = d.cli("run", "--rm", "-i", "busybox", "cat", input="hi there\n")
    assert res.stdout_text == "hi there\n"


def test_detached_logs_ps_rm(d) -> None:
    cid = d.cli("run", "-d", "--name", "loggy", "busybox", "sh", "-c",
                "echo one; echo two >&2; sleep 1000").stdout_text.strip()
    assert len(cid) == 64
    deadline = time.time() + 5
    while time.time() < deadline and "two" not in d.cli("logs", "loggy").stderr_text:
        time.sleep(0.05)
    logs = d.cli("logs", "loggy")
    assert (logs.stdout_text, logs.stderr_text) == ("one\n", "two\n")
    assert d.cli("logs", "--tail", "1", "-t", "loggy").stdout_text == ""
    ps = d.cli("ps", "--format", "{{.Names}} {{.Status}}").stdout_text
    assert ps.startswith("loggy Up")
    state = json.loads(d.cli("inspect", "loggy").stdout_text)[0]["State"]
    assert state["Running"] and state["Pid"] > 0
    res = d.cli("rm", "loggy", check=False)
    assert res.returncode != 0 and "container is running" in res.stderr_text
    d.cli("rm", "-f", "loggy")
    assert "loggy" not in d.cli("ps", "-a").stdout_text


def test_name_conflict_and_missing_image_and_executable(d) -> None:
    cid = d.cli("create", "--name", "dup", "busybox", "true").stdout_text.strip()
    res = d.cli("create", "--name", "dup", "busybox", "true", check=False)
    assert res.returncode != 0 and cid in res.stderr_text
    d.cli("rm", "dup")
    res = d.cli("run", "--pull", "never", "--rm", "nosuchimage:1", "true", check=False)
    assert res.returncode != 0 and "No such image" in res.stderr_text
    res = d.cli("run", "--rm", "busybox", "nope", check=False)
    assert res.returncode == 127
    assert 'exec: "nope": executable file not found in $PATH' in res.stderr_text


def test_stop_kill_wait_inspect(d) -> None:
    d.cli("run", "-d", "--name", "stoppy", "busybox", "sleep", "1000")
    t0 = time.monotonic()
    d.cli("stop", "-t", "1", "stoppy")
    assert time.monotonic() - t0 < 5
    state = json.loads(d.cli("inspect", "stoppy").stdout_text)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    d.cli("rm", "stoppy")
    # with --init, tini forwards the signal to sleep, which dies of it
    d.cli("run", "-d", "--init", "--name", "killy", "busybox", "sleep", "1000")
    res = d.cli("kill", "-s", "BOGUS", "killy", check=False)
    assert res.returncode != 0 and "Invalid signal" in res.stderr_text
    d.cli("kill", "-s", "USR1", "killy")
    assert d.cli("wait", "killy").stdout_text.strip() == str(128 + signal.SIGUSR1)
    d.cli("rm", "killy")


def test_pause_unpause_restart(d) -> None:
    d.cli("run", "-d", "--name", "pausy", "busybox", "sleep", "1000")
    d.cli("pause", "pausy")
    assert json.loads(d.cli("inspect", "pausy").stdout_text)[0]["State"]["Paused"] is True
    d.cli("unpause", "pausy")
    d.cli("restart", "-t", "0", "pausy")
    assert json.loads(d.cli("inspect", "pausy").stdout_text)[0]["State"]["Running"] is True
    d.cli("rm", "-f", "pausy")


def test_files_persist_across_stop_start(d) -> None:
    d.cli("create", "--name", "keep", "busybox", "sh", "-c", "cat /kept 2>/dev/null; echo data > /kept")
    assert d.cli("start", "-a", "keep").stdout_text == ""
    assert d.cli("start", "-a", "keep").stdout_text == "data\n"  # the rw layer kept the file
    d.cli("rm", "keep")


def test_docker_py(d) -> None:
    client = d.client()
    out = client.containers.run("busybox", ["sh", "-c", "echo $FOO"], environment={"FOO": "bar"}, remove=True)
    assert out == b"bar\n"
    c = client.containers.run("busybox", "sleep 1000", detach=True, labels={"team": "a"})
    assert [x.id for x in client.containers.list(filters={"label": "team=a"})] == [c.id]
    c.remove(force=True)


def test_live_restore_after_kill_9(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    try:
        d.cli("load", "-i", busybox_tar.path)
        d.cli("run", "-d", "--name", "long", "busybox", "sh", "-c",
              "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done")
        d.cli("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 42")
        time.sleep(0.3)
        d.stop(signal.SIGKILL)
        time.sleep(1.5)  # "short" exits while the daemon is down
        d.start()
        assert d.cli("ps", "--format", "{{.Names}}").stdout_text.split() == ["long"]
        assert d.cli("inspect", "-f", "{{.State.ExitCode}}", "short").stdout_text.strip() == "42"
        deadline = time.monotonic() + 20
        while True:  # the lines written while the daemon was down, then on: none lost, none twice
            lines = d.cli("logs", "long").stdout_text.split()
            assert lines == [f"line{i}" for i in range(len(lines))]
            if len(lines) > 40 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(lines) > 40
        # the restored container is followed and attached as any other
        follow = d.api().logs("long", stream=True, follow=True, tail=0)
        assert next(follow).startswith(b"line")
        follow.close()
        attached = d.api().attach("long", stream=True, logs=False)
        assert next(attached).startswith(b"line")
        attached.close()
        d.cli("stop", "-t", "1", "long")
        assert d.cli("inspect", "-f", "{{.State.Status}}", "long").stdout_text.strip() == "exited"
        d.cli("rm", "long", "short")
    finally:
        ids = d.cli("ps", "-aq", check=False).stdout_text.split() if d.proc else []
        if ids:
            d.cli("rm", "-f", *ids, check=False)
