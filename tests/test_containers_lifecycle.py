"""The rest of issue 3's list through the real docker CLI and docker-py: ps -s and filters, wait conditions,
top with ps args, restart policies (backoff, restarting state, on-failure:N across daemon restarts), events
filters, error statuses."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import docker
import pytest


def _inspect(d, name: str) -> dict:
    return json.loads(d.cli("inspect", name).stdout_text)[0]


def _until(check, timeout: float = 15.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def test_ps_size_counts_the_rw_layer(d) -> None:
    d.cli("run", "-d", "--name", "sized", "busybox", "sh", "-c",
          "head -c 100000 /dev/zero > /blob; sleep 1000")
    assert _until(lambda: d.cli("exec", "sized", "ls", "/blob", check=False).returncode == 0)
    time.sleep(0.2)
    row = next(c for c in d.api().containers(size=True) if c["Names"] == ["/sized"])
    image_size = d.api().inspect_image("busybox")["Size"]
    assert 100000 <= row["SizeRw"] < 110000
    assert row["SizeRootFs"] == image_size + row["SizeRw"]
    shown = d.cli("ps", "-s", "--filter", "name=sized", "--format", "{{.Size}}").stdout_text.strip()
    assert shown.startswith("100kB (virtual ")
    assert _inspect(d, "sized")["State"]["Running"]
    full = json.loads(d.cli("inspect", "-s", "sized").stdout_text)[0]
    assert (full["SizeRw"], full["SizeRootFs"]) == (row["SizeRw"], row["SizeRootFs"])
    df = d.api().df()["Containers"]
    assert [(c["Names"], c["SizeRw"]) for c in df] == [(["/sized"], row["SizeRw"])]
    summary = d.cli("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}").stdout_text
    assert "Containers 1 1" in summary.splitlines()
    assert "sized" in d.cli("system", "df", "-v").stdout_text
    d.cli("rm", "-f", "sized")


def test_ps_filters_before_since_exited_volume_limit(d) -> None:
    lbl = ["--label", "suite=filters"]
    d.cli("volume", "create", "fvol")
    d.cli("create", *lbl, "--name", "f1", "-v", "fvol:/data", "busybox", "true")
    d.cli("run", *lbl, "--name", "f2", "busybox", "sh", "-c", "exit 3", check=False)
    d.cli("run", *lbl, "--name", "f3", "-v", "/tmp:/hostdir", "busybox", "true")
    d.cli("create", *lbl, "--name", "f4", "busybox", "true")

    def names(*args: str) -> list[str]:
        return d.cli("ps", "-a", "--filter", "label=suite=filters", *args,
                     "--format", "{{.Names}}").stdout_text.split()

    assert names() == ["f4", "f3", "f2", "f1"]
    assert names("--filter", "before=f3") == ["f2", "f1"]
    assert names("--filter", "since=f2") == ["f4", "f3"]
    assert names("--filter", "since=f1", "--filter", "before=f4") == ["f3", "f2"]
    assert names("--filter", "exited=3") == ["f2"]
    assert names("--filter", "exited=0") == ["f3"]  # f1 and f4 never ran
    assert names("--filter", "volume=fvol") == ["f1"]
    assert names("--filter", "volume=/data") == ["f1"]
    assert names("--filter", "volume=/hostdir") == ["f3"]
    assert names("--filter", "status=created") == ["f4", "f1"]
    assert names("--filter", "status=exited") == ["f3", "f2"]
    latest = d.cli("ps", "-l", "--format", "{{.Names}}").stdout_text.split()
    assert latest == ["f4"]
    assert d.cli("ps", "-n", "2", "--format", "{{.Names}}").stdout_text.split() == ["f4", "f3"]
    res = d.cli("ps", "--filter", "status=sleeping", check=False)
    assert res.returncode != 0 and "Invalid filter 'status=sleeping'" in res.stderr_text
    res = d.cli("ps", "--filter", "before=nosuch", check=False)
    assert res.returncode != 0 and "No such container: nosuch" in res.stderr_text
    d.cli("rm", "f1", "f2", "f3", "f4")
    d.cli("volume", "rm", "fvol")


def test_wait_conditions(d) -> None:
    api = d.api()
    cid = d.cli("create", "busybox", "sh", "-c", "exit 5").stdout_text.strip()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # a created container has not run: not-running answers at once, next-exit waits for a run
        assert api.wait(cid, condition="not-running", timeout=10)["StatusCode"] == 0
        nxt = pool.submit(api.wait, cid, 30, "next-exit")
        removed = pool.submit(api.wait, cid, 30, "removed")
        time.sleep(0.5)
        assert not nxt.done()
        d.cli("start", cid)
        assert nxt.result(20)["StatusCode"] == 5
        assert not removed.done()
        d.cli("rm", cid)
        assert removed.result(20)["StatusCode"] == 5
    with pytest.raises(docker.errors.APIError) as err:
        api.wait("busybox-nonexistent", condition="not-running", timeout=5)
    assert err.value.status_code == 404
    cid = d.cli("create", "busybox", "true").stdout_text.strip()
    with pytest.raises(docker.errors.APIError) as err:
        api.wait(cid, condition="sometime", timeout=5)
    assert err.value.status_code == 400
    d.cli("rm", cid)


def test_top_with_ps_args(d) -> None:
    d.cli("run", "-d", "--name", "toppy", "busybox", "sleep", "1000")
    rows = d.cli("top", "toppy", "-o", "pid,comm").stdout_text.splitlines()
    assert rows[0].split() == ["PID", "COMMAND"]
    assert [r.split()[1] for r in rows[1:]] == ["sleep"]
    pid = _inspect(d, "toppy")["State"]["Pid"]
    assert rows[1].split()[0] == str(pid)
    default = d.api().top("toppy")
    assert default["Titles"][:2] == ["UID", "PID"] and len(default["Processes"]) == 1
    aux = d.api().top("toppy", ps_args="aux")
    assert "%CPU" in aux["Titles"] and aux["Processes"][0][-1] == "sleep 1000"
    res = d.cli("top", "toppy", "-o", "comm", check=False)
    assert res.returncode != 0 and "Couldn't find PID field in ps output" in res.stderr_text
    d.cli("rm", "-f", "toppy")
    res = d.cli("top", "toppy", check=False)
    assert res.returncode != 0 and "No such container: toppy" in res.stderr_text


def test_restart_always_backs_off_shows_restarting_and_stop_cancels(d) -> None:
    since = str(time.time())
    d.cli("run", "-d", "--name", "flappy", "--restart", "always", "busybox", "sh", "-c", "exit 2")
    state = _until(lambda: (s := _inspect(d, "flappy"))["State"]["Restarting"] and s, 15, 0.02)
    assert state, "never seen restarting"
    assert state["State"]["Status"] == "restarting" and state["State"]["Running"] is True
    assert state["State"]["ExitCode"] == 2
    ps = d.cli("ps", "--filter", "name=flappy", "--format", "{{.Status}}").stdout_text
    assert ps.startswith("Restarting (2) ")
    res = d.cli("rm", "flappy", check=False)
    assert res.returncode != 0 and "container is restarting" in res.stderr_text
    assert _until(lambda: _inspect(d, "flappy")["RestartCount"] >= 5, 30)
    d.cli("stop", "flappy")
    count = _inspect(d, "flappy")["RestartCount"]
    time.sleep(1.5)
    after = _inspect(d, "flappy")
    assert after["RestartCount"] == count and after["State"]["Status"] == "exited"
    # backoff doubles from 100 ms: the gap after the n-th restart is at least 0.1 * 2**n s, however busy
    events = d.cli("events", "--since", since, "--until", str(time.time()), "--filter", "container=flappy",
                   "--filter", "event=start", "--format", "{{.TimeNano}}").stdout_text.split()
    starts = [int(x) / 1e9 for x in events]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(gaps) >= 5 and all(gap >= 0.095 * 2 ** i for i, gap in enumerate(gaps)), gaps
    # dockerd reports a policy restart as die then start, with no "restart" event
    assert d.cli("events", "--since", since, "--until", str(time.time()), "--filter", "container=flappy",
                 "--filter", "event=restart").stdout_text == ""
    d.cli("start", "flappy")
    assert _inspect(d, "flappy")["RestartCount"] == 0  # a start by hand begins anew, as dockerd
    d.cli("rm", "-f", "flappy")


def test_on_failure_limit(d) -> None:
    d.cli("run", "-d", "--name", "failing", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
    final = _until(lambda: (s := _inspect(d, "failing"))["RestartCount"] == 2 and s["State"]["Status"] == "exited"
                   and s, 20)
    assert final
    time.sleep(1)
    assert _inspect(d, "failing")["RestartCount"] == 2
    d.cli("run", "-d", "--name", "succeeding", "--restart", "on-failure", "busybox", "true")
    d.cli("wait", "succeeding")
    time.sleep(0.5)
    assert _inspect(d, "succeeding")["RestartCount"] == 0
    d.cli("rm", "-f", "failing", "succeeding")


def test_events_filtered_by_container_event_and_label(d) -> None:
    since = str(time.time())
    d.cli("run", "--name", "ev1", "--label", "evk=1", "busybox", "true")
    d.cli("run", "--name", "ev2", "busybox", "sh", "-c", "exit 4", check=False)
    until = str(time.time() + 0.1)

    def events(*filters: str) -> list[str]:
        args = [x for f in filters for x in ("--filter", f)]
        return d.cli("events", "--since", since, "--until", until, *args,
                     "--format", "{{.Actor.Attributes.name}} {{.Action}}").stdout_text.splitlines()

    assert events("container=ev1") == ["ev1 create", "ev1 attach", "ev1 start", "ev1 die"]
    assert events("event=die") == ["ev1 die", "ev2 die"]
    assert events("label=evk=1", "event=start") == ["ev1 start"]
    assert events("type=container", "container=ev2", "event=die", "event=create") == ["ev2 create", "ev2 die"]
    die = d.cli("events", "--since", since, "--until", until, "--filter", "container=ev2", "--filter", "event=die",
                "--format", "{{json .}}").stdout_text
    assert json.loads(die)["Actor"]["Attributes"]["exitCode"] == "4"
    d.cli("rm", "ev1", "ev2")


def test_error_statuses(d) -> None:
    api = d.api()
    cid = api.create_container("busybox", "true", name="taken")["Id"]
    with pytest.raises(docker.errors.APIError) as err:
        api.create_container("busybox", "true", name="taken")
    assert err.value.status_code == 409 and cid in str(err.value.explanation)
    with pytest.raises(docker.errors.APIError) as err:
        api.create_container("nosuchimage:1", "true")
    assert err.value.status_code == 404 and "No such image: nosuchimage:1" in str(err.value.explanation)
    bad = api.create_container("busybox", "nope")["Id"]
    with pytest.raises(docker.errors.APIError) as err:
        api.start(bad)
    assert err.value.status_code == 400
    assert 'exec: "nope": executable file not found in $PATH' in str(err.value.explanation)
    assert api.inspect_container(bad)["State"]["ExitCode"] == 127
    api.start(cid)
    api.wait(cid)
    api.remove_container(cid)
    api.remove_container(bad)
    run = api.create_container("busybox", "sleep 100")["Id"]
    api.start(run)
    with pytest.raises(docker.errors.APIError) as err:
        api.remove_container(run)
    assert err.value.status_code == 409
    assert api.start(run) is None  # 304: already started
    api.remove_container(run, force=True)


def test_on_failure_count_survives_daemon_restarts(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    try:
        d.cli("load", "-i", busybox_tar.path)
        d.cli("run", "-d", "--name", "retry", "--restart", "on-failure:4", "busybox", "sh", "-c",
              "sleep 0.4; exit 1")
        assert _until(lambda: _inspect(d, "retry")["RestartCount"] >= 1, 20)
        d.stop(signal.SIGKILL)
        time.sleep(0.6)  # it fails while the daemon is down
        booted = str(time.time())
        d.start()
        final = _until(lambda: (s := _inspect(d, "retry"))["RestartCount"] == 4
                       and s["State"]["Status"] == "exited" and s, 30)
        assert final and final["State"]["ExitCode"] == 1
        # as dockerd: the daemon's own start at boot begins a new count, then four retries
        starts = d.cli("events", "--since", booted, "--until", str(time.time()), "--filter", "container=retry",
                       "--filter", "event=start").stdout_text.splitlines()
        assert len(starts) == 5
        d.stop()
        d.start()  # a graceful restart does not start it again: its retries are spent
        time.sleep(1)
        state = _inspect(d, "retry")
        assert state["RestartCount"] == 4 and state["State"]["Status"] == "exited"
    finally:
        ids = d.cli("ps", "-aq", check=False).stdout_text.split() if d.proc else []
        if ids:
            d.cli("rm", "-f", *ids, check=False)


def test_shim_killed_leaves_a_defined_exited_state(d) -> None:
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout_text.strip()
    pid = _inspect(d, cid)["State"]["Pid"]
    with open(f"{d.exec_root}/containers/{cid}/conmon.pid", encoding="ascii") as f:
        os.kill(int(f.read().strip()), signal.SIGKILL)
    state = _until(lambda: (s := _inspect(d, cid)["State"])["Status"] == "exited" and s, 15)
    assert state and state["ExitCode"] == 255 and state["Error"] == "container shim exited unexpectedly"
    # the orphaned process was killed with its container (pid 1 reaps it)
    assert _until(lambda: not os.path.exists(f"/proc/{pid}"), 10)
    d.cli("start", cid)  # and it can run again
    assert _inspect(d, cid)["State"]["Running"]
    d.cli("rm", "-f", cid)


def test_oom_kill_is_reported(d) -> None:
    since = str(time.time())
    res = d.cli("run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c",
                "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", check=False)
    state = _inspect(d, "hog")["State"]
    assert (res.returncode, state["ExitCode"], state["OOMKilled"]) == (137, 137, True), res.stderr_text
    actions = d.cli("events", "--since", since, "--until", str(time.time()), "--filter", "container=hog",
                    "--format", "{{.Action}}").stdout_text.split()
    assert actions[-2:] == ["oom", "die"]
    d.cli("rm", "hog")
