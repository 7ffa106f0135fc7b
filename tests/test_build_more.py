"""docker build: Dockerfile on stdin with a directory context, --network, -q, --platform, --cache-from, heredocs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def write(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(tmp_path)


def cat(d, image: str, path: str) -> str:
    return d.cli("run", "--rm", image, "cat", path).stdout_text


def test_dockerfile_on_stdin_with_directory_context(d, tmp_path):
    # the CLI puts the Dockerfile into the context tar under a random name and sends that name
    context = write(tmp_path, {"a.txt": "from context\n", "Dockerfile": "FROM busybox\nRUN false\n"})
    res = d.cli("build", "-q", "-t", "stdin-df", "-f", "-", context,
                input=b"FROM busybox\nCOPY a.txt /a.txt\n")
    assert res.returncode == 0, res.stderr_text
    assert cat(d, "stdin-df", "/a.txt") == "from context\n"
