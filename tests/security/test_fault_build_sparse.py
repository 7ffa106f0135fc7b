"""Build contexts are streamed with bounded memory, sparse files stay sparse, and a build or a load
whose client went away stops (issue 12 item 8)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures.busybox import rootfs_layer, write_docker_save  # noqa: E402
from refdocker import rss_kb  # noqa: E402

SPARSE_SIZE = 4 << 30
RSS_GROWTH_BOUND = 200 << 20


def _rss(pid: int) -> int:
    return rss_kb(pid) * 1024


def _pids(word: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", word], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_sparse_context_bounded_and_responsive(fresh_daemon, busybox_tar, tmp_path) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY big /big\n")
    with open(ctx / "big", "wb") as f:
        f.truncate(SPARSE_SIZE)
    pid = d.proc.pid
    before = _rss(pid)
    peak = before
    stop = threading.Event()
    slow: list[float] = []

    def watch() -> None:
        nonlocal peak
        api = docker.APIClient(base_url=d.host, version="1.44", timeout=60)
        while not stop.is_set():
            peak = max(peak, _rss(pid))
            t = time.monotonic()
            api.version()
            slow.append(time.monotonic() - t)
            stop.wait(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        env = {**d.env(), "DOCKER_BUILDKIT": "0"}
        res = subprocess.run(["docker", "build", "-q", "-t", "sparse", str(ctx)], env=env, capture_output=True,
                             timeout=600)
        assert res.returncode == 0, res.stderr.decode(errors="replace")
    finally:
        stop.set()
        watcher.join()
    assert peak - before < RSS_GROWTH_BOUND, f"RSS grew by {(peak - before) >> 20} MiB during the build"
    assert slow, "docker version never answered during the build"
    # the file is whole in the image, and its holes stayed holes on the daemon's disk
    out = d.cli("run", "--rm", "sparse", "sh", "-c", "stat -c %s /big; du -k /big").stdout_text.split()
    assert int(out[0]) == SPARSE_SIZE
    assert int(out[1]) < 1024, f"/big uses {out[1]} KiB in the image: its holes were filled"


def test_build_stops_when_client_goes(fresh_daemon, busybox_tar, tmp_path) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    word = f"sleep {random.randint(400000, 499999)}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {word}\nRUN touch /after\n")
    env = {**d.env(), "DOCKER_BUILDKIT": "0"}
    client = subprocess.Popen(["docker", "build", "-t", "cut", str(ctx)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _pids(word):
            assert time.monotonic() < deadline and client.poll() is None, "the RUN step never started"
            time.sleep(0.1)
        client.send_signal(signal.SIGKILL)
        client.wait()
        deadline = time.monotonic() + 20
        while _pids(word) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _pids(word) == [], "the step kept running after its client went away"
        steps = os.path.join(d.data_root, "build", "steps")
        deadline = time.monotonic() + 20
        while os.path.isdir(steps) and os.listdir(steps) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.isdir(steps) or os.listdir(steps) == [], "the build did not release its steps"
        assert d.api().images(name="cut") == []
        assert d.cli("ps", "-a", "-q").stdout_text.split() == []
    finally:
        if client.poll() is None:
            client.kill()
        for pid in _pids(word):
            os.kill(pid, signal.SIGKILL)


def test_load_stops_when_client_goes(fresh_daemon, tmp_path) -> None:
    """Half an image sent, then the connection closed: the load ends and its partial layer goes."""
    d = fresh_daemon
    d.start()
    image_tar = tmp_path / "big.tar"
    write_docker_save(str(image_tar), [rootfs_layer({"big": os.urandom(40 << 20)})], ["cut:latest"])
    size = image_tar.stat().st_size
    pending = os.path.join(d.data_root, "overlay2", "tmp")
    with socket.socket(socket.AF_UNIX) as s, open(image_tar, "rb") as f:
        s.connect(d.socket)
        s.sendall(f"POST /v1.44/images/load HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        s.sendall(f.read(size // 2))
        deadline = time.monotonic() + 20
        while not (os.path.isdir(pending) and os.listdir(pending)):
            assert time.monotonic() < deadline, "the load never started unpacking"
            time.sleep(0.05)
    deadline = time.monotonic() + 20
    while os.listdir(pending) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(pending) == [], "the cut load left its partial layer"
    assert d.api().images(name="cut") == []
    assert d.api().version()["ApiVersion"]


def test_huge_lone_dockerfile_refused(fresh_daemon) -> None:
    """A body that is not a tar is the Dockerfile itself: read up to a bound, not whole."""
    d = fresh_daemon
    d.start()
    size = 64 << 20
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(d.socket)
        s.sendall(f"POST /v1.44/build HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        chunk = b"RUN true\n" * (1 << 16)
        try:
            for _ in range(size // len(chunk)):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before the rest
        s.settimeout(30)
        answer = b""
        while b"\r\n\r\n" not in answer or b"larger than" not in answer:
            data = s.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"larger than" in answer  # refused at the bound, not parsed after reading it all
