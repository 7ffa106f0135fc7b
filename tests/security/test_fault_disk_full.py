"""`docker rm -f` of a running container succeeds the first time on a full data root."""

from __future__ import annotations

import os
import subprocess

import pytest


@pytest.fixture
def small_root(fresh_daemon):
    """The daemon's data root on a tmpfs of its own, small enough to fill in a moment."""
    os.makedirs(fresh_daemon.data_root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", fresh_daemon.data_root], check=True)
    yield fresh_daemon
    fresh_daemon.teardown()
    subprocess.run(["umount", "-l", fresh_daemon.data_root], check=False)


def _fill(path: str) -> None:
    with open(path, "wb") as f:
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    # the last partial blocks too: a record write of any size must now fail
    with open(path + ".tail", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 512)
        except OSError:
            pass


def test_rm_force_on_full_disk(small_root, busybox_tar) -> None:
    d = small_root
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    cid = d.cli("run", "-d", "busybox", "sleep", "300").stdout_text.strip()
    filler = os.path.join(d.data_root, "filler")
    _fill(filler)
    try:
        res = d.cli("rm", "-f", cid, check=False, timeout=60)
        assert res.returncode == 0, res.stderr_text
        assert d.cli("ps", "-a", "-q", "--no-trunc").stdout_text.split() == []
        assert not os.path.exists(os.path.join(d.data_root, "containers", cid))
    finally:
        for p in (filler, filler + ".tail"):
            if os.path.exists(p):
                os.unlink(p)
