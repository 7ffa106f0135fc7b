"""SIGTERM ends the daemon within a bound whatever requests are in flight (issue 12, finding 7).

A `docker stop -t -1` of a container that ignores SIGTERM waits forever (as
dockerd: a negative timeout means no SIGKILL), and so do `wait`, `logs -f`,
`events` and `restart?t=-99999`. Such a request used to keep the daemon alive
after SIGTERM (its socket gone, the data-root lock held), so the next start
failed. Now the daemon exits and a new one starts on the same data root, and
the container is still there and still running.
"""

from __future__ import annotations

import signal
import subprocess
import time

import docker

from conftest import DOCKER

SHUTDOWN_BOUND = 30.0  # the test's own patience, far above the daemon's grace


def test_sigterm_with_blocking_requests_in_flight(fresh_daemon, busybox_tar):
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("run", "-d", "--network", "none", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; sleep 1000")
    d.cli("run", "-d", "--network", "none", "--name", "other", "busybox", "sh", "-c", "trap '' TERM; sleep 1000")
    clients = [subprocess.Popen([DOCKER, *args], env=d.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for args in (["stop", "-t", "-1", "stubborn"], ["wait", "stubborn"],
                            ["logs", "-f", "stubborn"], ["events"], ["attach", "other"])]
    restart = subprocess.Popen(
        ["curl", "-s", "--unix-socket", d.socket, "-X", "POST", "http://docker/v1.44/containers/other/restart?t=-99999"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)  # the requests reach the daemon and block (nothing to assert on: they never answer)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGTERM)
        try:
            code = d.proc.wait(SHUTDOWN_BOUND)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"dockyardd still running {SHUTDOWN_BOUND} s after SIGTERM:\n{d.log()}") from None
        assert code == 0, d.log()
        d.proc = None
        d.start()  # the data-root lock was released
        state = docker.APIClient(base_url=d.host, version="1.44", timeout=60).inspect_container("stubborn")["State"]
        assert state["Running"], state  # live restore: nothing was lost or killed on the way out
    finally:
        for p in [*clients, restart]:
            p.kill()
            p.wait()
    assert "Traceback" not in d.log(), d.log()


def test_negative_stop_timeouts_wait_for_the_container(d):
    """As dockerd: a negative timeout sends the stop signal and waits as long as it takes, no SIGKILL."""
    script = "trap 'sleep 1; exit 7' TERM; while :; do sleep 0.1; done"
    d.cli("run", "-d", "--network", "none", "--name", "graceful", "busybox", "sh", "-c", script)
    try:
        d.cli("stop", "-t", "-1", "graceful", timeout=60)
        state = d.api().inspect_container("graceful")["State"]
        assert not state["Running"] and state["ExitCode"] == 7, state  # its own exit, not a SIGKILL
        d.cli("start", "graceful")
        res = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", d.socket,
                              "-X", "POST", "http://docker/v1.44/containers/graceful/restart?t=-99999"],
                             capture_output=True, text=True, timeout=60)
        assert res.stdout == "204", res
        state = d.api().inspect_container("graceful")["State"]
        assert state["Running"], state
        assert "Traceback" not in d.log(), d.log()
    finally:
        d.cli("rm", "-f", "graceful", check=False)
