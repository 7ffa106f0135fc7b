"""A running container that exchanges ``/dir`` with ``/link`` (-> ``/``) in a loop, for the filesystem race tests."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from swap import swapper_binary


def start_swapper(d: Any, tmp_path: Path, prepare: str, target: str = "/", tag: str = "") -> tuple[str, str]:
    """(container name, unique tag): ``prepare`` (shell, may use ``$TAG``) runs first in the container,
    then /dir and /link (-> ``target``, ``/`` or a path that exists only on the host) trade places until
    the container is removed."""
    bindir = tmp_path / "swapbin"
    bindir.mkdir(exist_ok=True)
    shutil.copy(swapper_binary(), bindir / "swap")
    tag = tag or uuid.uuid4().hex[:12]
    name = f"fsrace-{tag}"
    script = f"TAG={tag}; mkdir -p /dir/tmp && {prepare} && ln -s {target} /link && exec /s/swap /dir /link 120"
    d.cli("run", "-d", "--network", "none", "--name", name, "-v", f"{bindir}:/s:ro", "busybox", "sh", "-c", script)
    deadline = time.monotonic() + 10
    while d.cli("exec", name, "test", "-e", "/s/swap", check=False).returncode != 0 or \
            d.cli("exec", name, "test", "-L", "/link", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the swapper did not start"
        time.sleep(0.1)
    return name, tag
