"""Joining another container's namespace pins it by descriptor, and a pid that is no longer the target's
(it exited and the number went to another process) is refused rather than joined."""

from __future__ import annotations

import os
import subprocess
from contextlib import ExitStack
from types import SimpleNamespace

import pytest

from dockyard import errors
from dockyard.containers import joins


def test_a_reused_pid_is_not_joined() -> None:
    stranger = subprocess.Popen(["sleep", "60"])  # a live process outside any container's cgroup
    try:
        target = SimpleNamespace(id="f" * 64, state=SimpleNamespace(pid=stranger.pid))
        for kind in ("net", "pid", "ipc"):
            with ExitStack() as stack, pytest.raises(errors.SystemError_, match="is not running"):
                joins._pin(target, kind, stack)  # type: ignore[arg-type]
    finally:
        stranger.kill()
        stranger.wait()


def test_an_exited_target_is_not_joined() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    target = SimpleNamespace(id="e" * 64, state=SimpleNamespace(pid=gone.pid))
    before = len(os.listdir("/proc/self/fd"))
    with ExitStack() as stack, pytest.raises(errors.SystemError_, match="is not running"):
        joins._pin(target, "net", stack)  # type: ignore[arg-type]
    assert len(os.listdir("/proc/self/fd")) == before  # no descriptor left open
