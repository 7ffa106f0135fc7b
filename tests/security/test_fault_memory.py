"""The daemon's memory comes back after big transfers: logs, build contexts and loads are streamed,
not held (issue 12 item 22)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures.busybox import rootfs_layer, write_docker_save  # noqa: E402
from refdocker import rss_kb  # noqa: E402

# measured here: +27..29 MiB with glibc's default malloc tuning, +10..11 MiB with the daemon's
RSS_BOUND = 20 << 20
LOG_BYTES = 10 << 20


def _rss(pid: int) -> int:
    return rss_kb(pid) * 1024


def test_rss_returns_after_big_transfers(fresh_daemon, busybox_tar, tmp_path) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    # short lines, as in the side-by-side benchmark: 1.7 million json-file records
    cid = d.cli("run", "-d", "busybox", "sh", "-c", f"yes 12345 | head -c {LOG_BYTES}").stdout_text.strip()
    d.cli("wait", cid)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY data /data\n")
    (ctx / "data").mkdir()
    for i in range(5000):  # 50 MB in 10 kB files
        (ctx / "data" / f"f{i:05}").write_bytes(os.urandom(10_000))
    image_tar = str(tmp_path / "big.tar")
    write_docker_save(image_tar, [rootfs_layer({f"big{i}": os.urandom(10 << 20) for i in range(3)}),
                                  rootfs_layer({"more": os.urandom(10 << 20)})], ["big:latest"])
    time.sleep(1)
    pid = d.proc.pid
    before = _rss(pid)

    out = subprocess.run(["docker", "logs", cid], env=d.env(), capture_output=True, timeout=120)
    assert len(out.stdout) >= LOG_BYTES
    del out
    replay = d.api().attach(cid, logs=True, stream=False)  # attach's log replay (logs=1)
    assert len(replay) >= LOG_BYTES
    del replay
    env = {**d.env(), "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", "build", "-q", "-t", "bigctx", str(ctx)], env=env, check=True, capture_output=True,
                   timeout=300)
    d.cli("load", "-i", image_tar)
    time.sleep(1)
    after = _rss(pid)
    assert after - before < RSS_BOUND, f"RSS {before >> 20} MiB -> {after >> 20} MiB after the workload"


def test_load_bounds_what_it_holds(fresh_daemon, tmp_path) -> None:
    """Members that are not layers are held until the archive ends: their total is bounded."""
    d = fresh_daemon
    d.start()
    path = tmp_path / "junk.tar"
    blob = b"{" + b" " * ((1 << 20) - 2) + b"}"
    with tarfile.open(path, "w") as tar:
        for i in range(80):  # 80 MiB of would-be JSON
            info = tarfile.TarInfo(f"junk/{i}.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    pid = d.proc.pid
    before = _rss(pid)
    res = d.cli("load", "-i", str(path), check=False)
    assert res.returncode != 0 and "exceed 64 MiB" in res.stderr_text + res.stdout_text, res.stderr_text
    assert _rss(pid) - before < 72 << 20
