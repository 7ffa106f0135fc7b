"""`kill -9` of the daemon during a RUN step: the next start reaps the step (process, mount, netns, veth)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

DOCKER = "docker"


def _pids(word: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", word], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _overlay_mounts(root: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [ln for ln in f if root in ln]


def test_killed_daemon_reaps_build_step(fresh_daemon, busybox_tar, tmp_path) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    word = f"sleep {random.randint(300000, 399999)}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {word}\n")
    env = {**d.env(), "DOCKER_BUILDKIT": "0"}
    output = open(tmp_path / "build.out", "wb")
    client = subprocess.Popen([DOCKER, "build", "-t", "never", str(ctx)], env=env, stdout=output,
                              stderr=subprocess.STDOUT)
    output.close()
    bridge = d.bridge_args()[1]
    try:
        deadline = time.monotonic() + 60
        while not _pids(word):
            assert time.monotonic() < deadline, "the RUN step never started"
            assert client.poll() is None, (tmp_path / "build.out").read_text()
            time.sleep(0.1)
        assert _overlay_mounts(d.data_root), "the step's rootfs should be mounted while it runs"
        d.stop(signal.SIGKILL)
        client.kill()
        client.wait()
        d.start()
        deadline = time.monotonic() + 20
        while _pids(word) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _pids(word) == [], "the step's process outlived the daemon's restart"
        assert _overlay_mounts(d.data_root) == []
        snapshots = os.path.join(d.data_root, "overlay2")
        assert [n for n in os.listdir(snapshots) if os.path.exists(os.path.join(snapshots, n, "snapshot.json"))] \
            == [], "the step's snapshot outlived the restart"
        netns_dir = os.path.join(d.exec_root, "netns")
        assert not os.path.isdir(netns_dir) or os.listdir(netns_dir) == []
        veths = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                               text=True).stdout
        assert veths.strip() == "", veths
        # and the daemon still builds
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN true\n")
        subprocess.run([DOCKER, "build", "-q", str(ctx)], env=env, check=True, capture_output=True, timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
        for pid in _pids(word):
            os.kill(pid, signal.SIGKILL)


def test_killed_daemon_drops_copy_view(fresh_daemon, busybox_tar, tmp_path) -> None:
    """Killed while a COPY holds its read view of the image: the next start unmounts and removes it."""
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY big /big\n")
    with open(ctx / "big", "wb") as f:
        f.truncate(2 << 30)
    env = {**d.env(), "DOCKER_BUILDKIT": "0"}
    client = subprocess.Popen([DOCKER, "build", "-q", str(ctx)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    snapshots = os.path.join(d.data_root, "overlay2")

    def views() -> list[str]:
        return [n for n in os.listdir(snapshots) if n.startswith("build-")]

    try:
        deadline = time.monotonic() + 120
        while not views():
            assert time.monotonic() < deadline and client.poll() is None, "the COPY never started"
            time.sleep(0.05)
        d.stop(signal.SIGKILL)
        client.kill()
        client.wait()
        d.start()
        assert views() == []
        assert _overlay_mounts(d.data_root) == []
    finally:
        if client.poll() is None:
            client.kill()
