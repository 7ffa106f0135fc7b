"""Shared by tests that drive an engine in this process (no API, no daemon): one with busybox loaded."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from dockyard.daemon.config import DaemonConfig
from dockyard.engine.engine import Engine


def engine_with_busybox(tmp_path: Path, busybox_tar_path: str) -> Iterator[Engine]:
    """The engine on a bridge of its own without iptables rules; its containers and bridge go after."""
    bridge = "dy" + uuid.uuid4().hex[:10]
    e = Engine(DaemonConfig(data_root=str(tmp_path / "data"), exec_root=str(tmp_path / "exec"),
                            bridge_name=bridge, iptables=False))
    try:
        with open(busybox_tar_path, "rb") as f:
            e.images.load(f)
        yield e
    finally:
        for c in e.containers.all():
            e.containers.remove(c.id, force=True)
        e.close()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def sleeper(e: Engine) -> str:
    """A running busybox container without a network; its ID."""
    c = e.containers.create(None, {"Image": "busybox", "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}})
    e.containers.start(c.id)
    return c.id
