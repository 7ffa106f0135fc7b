"""The reference dockerd with busybox loaded, for the side-by-side container tests of issue 15.

Both engines are driven through the same client calls (the docker CLI via ``.cli``, docker-py
via ``api_of``); dockerd 20.10 speaks API 1.41, so docker-py asks both for that version and the
answers are compared as the same client sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import docker
import pytest

import refdocker

API_VERSION = "1.41"

needs_dockerd = pytest.mark.skipif(not refdocker.available(),
                                   reason="the reference dockerd is not installed (apt-get install docker.io)")


def start_ref(base: Path, busybox_path: str, bridge: bool = False) -> refdocker.RefDocker:
    ref = refdocker.make_refdocker(base, bridge=bridge)
    ref.start()
    ref.cli("load", "-i", busybox_path)
    return ref


def api_of(engine: Any, version: str = API_VERSION) -> docker.APIClient:
    return docker.APIClient(base_url=engine.host, version=version, timeout=60)


def outcome(call: Callable[[], Any]) -> tuple[int, Any]:
    """(status, body) of a docker-py call: 200 and its result, or the error's status and message."""
    try:
        return 200, call()
    except docker.errors.APIError as e:
        return e.status_code, e.explanation


def cleanup(engine: Any, *names: str) -> None:
    engine.cli("rm", "-f", "-v", *names, check=False)
