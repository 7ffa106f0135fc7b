"""Shared by tests/test_build_modern_*.py: a context directory and the legacy-builder CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

LEGACY = {"DOCKER_BUILDKIT": "0"}


def ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(tmp_path)


def build(d, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``DOCKER_BUILDKIT=0 docker build ...``: the classic /build endpoint."""
    res = subprocess.run(["docker", "build", *args], input=input, capture_output=True,
                         env={**d.env(), **LEGACY}, timeout=180)
    res.stdout_text = res.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    res.stderr_text = res.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    if check and res.returncode != 0:
        raise AssertionError(f"docker build {' '.join(args)} failed:\n{res.stderr_text}\n{res.stdout_text}")
    return res


def run(d, image: str, *cmd: str) -> str:
    return d.cli("run", "--rm", image, *cmd).stdout_text
