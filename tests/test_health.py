"""Healthchecks through the real docker CLI and docker-py: probes, State.Health, events, ps filter, restarts."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from fixtures.busybox import image_config, rootfs_layer, write_docker_save  # noqa: E402

FAST = ["--health-interval", "300ms", "--health-timeout", "2s"]


def health(d, name: str) -> dict | None:
    return json.loads(d.cli("inspect", "-f", "{{json .State.Health}}", name).stdout_text)


def wait_status(d, name: str, status: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        h = health(d, name)
        if h and h["Status"] == status:
            return h
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: health {h}, wanted {status}")
        time.sleep(0.1)


def test_healthy_then_unhealthy_with_log_and_events(d) -> None:
    since = str(time.time())
    d.cli("run", "-d", "--name", "flip", *FAST, "--health-retries", "2",
          "--health-cmd", "echo probe; test ! -e /tmp/bad", "busybox", "sleep", "300")
    assert health(d, "flip")["Status"] in ("starting", "healthy")
    h = wait_status(d, "flip", "healthy")
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"] == "probe\n"
    assert "(healthy)" in d.cli("ps", "--filter", "name=flip", "--format", "{{.Status}}").stdout_text
    d.cli("exec", "flip", "touch", "/tmp/bad")
    h = wait_status(d, "flip", "unhealthy")
    assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
    time.sleep(2)  # more probes than the log keeps
    h = health(d, "flip")
    assert len(h["Log"]) == 5
    starts = [e["Start"] for e in h["Log"]]
    assert starts == sorted(starts) and all(e["End"] >= e["Start"] for e in h["Log"])
    events = d.cli("events", "--since", since, "--until", str(time.time()), "--filter", "container=flip",
                   "--format", "{{.Action}}").stdout_text.splitlines()
    health_events = [e for e in events if e.startswith("health_status")]
    assert health_events == ["health_status: healthy", "health_status: unhealthy"]
    assert any(e.startswith("exec_create: /bin/sh -c echo probe") for e in events)


def test_ps_filter_health(d) -> None:
    d.cli("run", "-d", "--name", "good", *FAST, "--health-cmd", "true", "busybox", "sleep", "300")
    d.cli("run", "-d", "--name", "bad", *FAST, "--health-retries", "1", "--health-cmd", "false",
          "busybox", "sleep", "300")
    d.cli("run", "-d", "--name", "slow", "--health-interval", "1h", "--health-cmd", "true", "busybox",
          "sleep", "300")
    d.cli("run", "-d", "--name", "plain", "busybox", "sleep", "300")
    wait_status(d, "good", "healthy")
    wait_status(d, "bad", "unhealthy")

    def names(value: str) -> set[str]:
        out = d.cli("ps", "--filter", f"health={value}", "--format", "{{.Names}}").stdout_text
        return set(out.split()) & {"good", "bad", "slow", "plain"}

    assert names("healthy") == {"good"}
    assert names("unhealthy") == {"bad"}
    assert names("starting") == {"slow"}
    assert names("none") == {"plain"}
    assert "(health: starting)" in d.cli("ps", "--filter", "name=slow", "--format", "{{.Status}}").stdout_text
    res = d.cli("ps", "--filter", "health=bogus", check=False)
    assert res.returncode != 0 and "Unrecognised filter value for health: bogus" in res.stderr_text
    assert health(d, "plain") is None


def test_timeout_and_missing_command(d) -> None:
    d.cli("run", "-d", "--name", "hang", "--health-interval", "300ms", "--health-timeout", "300ms",
          "--health-retries", "1", "--health-cmd", "sleep 5", "busybox", "sleep", "300")
    d.cli("run", "-d", "--name", "nocmd", *FAST, "--health-retries", "1", "--health-cmd", "nosuch",
          "busybox", "sleep", "300")
    h = wait_status(d, "hang", "unhealthy")
    assert h["Log"][0] | {"Start": "", "End": ""} == {"Start": "", "End": "", "ExitCode": -1,
                                                       "Output": "Health check exceeded timeout (300ms)"}
    h = wait_status(d, "nocmd", "unhealthy")
    assert h["Log"][0]["ExitCode"] == 127 and "nosuch: not found" in h["Log"][0]["Output"]


def test_start_period_does_not_count_failures(d) -> None:
    d.cli("run", "-d", "--name", "warm", "--health-interval", "200ms", "--health-retries", "1",
          "--health-start-period", "3s", "--health-start-interval", "200ms", "--health-cmd", "false", "busybox", "sleep", "300")
    time.sleep(1.5)
    h = health(d, "warm")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0 and h["Log"]
    wait_status(d, "warm", "unhealthy", timeout=10)


def test_no_healthcheck_and_image_healthcheck(d, tmp_path: Path) -> None:
    path = str(tmp_path / "hc.tar")
    layer = rootfs_layer()
    cfg = image_config(["sha256:" + hashlib.sha256(layer).hexdigest()], ["sleep", "300"], {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 30 * 10**9}})
    write_docker_save(path, [layer], ["hcimage:latest"], cfg)
    d.cli("load", "-i", path)
    # the user's interval over the image's test (dockerd merges field by field)
    d.cli("run", "-d", "--name", "fromimage", "--health-interval", "300ms", "hcimage")
    hc = json.loads(d.cli("inspect", "-f", "{{json .Config.Healthcheck}}", "fromimage").stdout_text)
    assert hc == {"Test": ["CMD", "true"], "Interval": 300_000_000}
    wait_status(d, "fromimage", "healthy")
    d.cli("run", "-d", "--name", "disabled", "--no-healthcheck", "hcimage")
    time.sleep(0.5)
    assert health(d, "disabled") is None
    assert "health" not in d.cli("ps", "--filter", "name=disabled", "--format", "{{.Status}}").stdout_text


def test_stop_restart_and_docker_py(d) -> None:
    client = d.client()
    c = client.containers.run("busybox", ["sleep", "300"], name="cycle", detach=True,
                              healthcheck={"test": ["CMD-SHELL", "true"], "interval": 300_000_000})
    wait_status(d, "cycle", "healthy")
    d.cli("stop", "-t", "0", "cycle")
    h = health(d, "cycle")
    assert h["Status"] == "unhealthy" and h["Log"]  # as dockerd once the monitor stops
    n = len(h["Log"])
    time.sleep(1)
    assert len(health(d, "cycle")["Log"]) == n  # no probes while stopped
    d.cli("start", "cycle")
    c.reload()
    assert c.attrs["State"]["Health"]["Status"] in ("starting", "healthy")
    wait_status(d, "cycle", "healthy")


def test_probes_resume_after_daemon_restart(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.config = {"live-restore": True}
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("run", "-d", "--name", "lr", *FAST, "--health-retries", "1",
          "--health-cmd", "test ! -e /tmp/bad", "busybox", "sleep", "300")
    wait_status(d, "lr", "healthy")
    d.restart()
    assert health(d, "lr")["Status"] == "healthy"  # kept over the restart
    d.cli("exec", "lr", "touch", "/tmp/bad")
    wait_status(d, "lr", "unhealthy")
    d.cli("rm", "-f", "lr")
