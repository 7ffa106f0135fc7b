"""``ADD <git URL>#ref:subdir`` and ``--keep-git-dir`` (issue 16), against a repository that ``git daemon``
serves on loopback. dockerd 20.10's classic builder has no git sources, so no side-by-side run here."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

GIT_ENV = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("gitd")
    work = base / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "main.txt").write_text("on main\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "main")
    git(work, "checkout", "-q", "-b", "feature")
    (work / "sub").mkdir()
    (work / "sub" / "inner.txt").write_text("inner\n")
    (work / "feature.txt").write_text("on feature\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "feature")
    git(work, "checkout", "-q", "main")
    git(base, "clone", "-q", "--bare", str(work), "repo.git")
    port = _free_port()
    daemon = subprocess.Popen(["git", "daemon", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
                               f"--port={port}", "--reuseaddr", str(base)], env=GIT_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"git://127.0.0.1:{port}/repo.git"
    daemon.terminate()
    daemon.wait(timeout=10)


def _build(d, tmp_path: Path, dockerfile: str, tag: str) -> list[dict]:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return list(d.api().build(path=str(tmp_path), tag=tag, decode=True, rm=True, forcerm=True))


def _out(lines: list[dict]) -> str:
    return "".join(m.get("stream", "") for m in lines)


def test_add_git_ref_subdir_and_keep_git_dir(d, tmp_path, served) -> None:
    dockerfile = (f"FROM busybox\nADD {served}#feature /src\nADD {served}#feature:sub /sub\n"
                  f"ADD --keep-git-dir=true {served} /kept\nADD {served} /plain\n")
    lines = _build(d, tmp_path, dockerfile, "gitadd")
    assert not [m for m in lines if "error" in m], lines
    listing = d.cli("run", "--rm", "gitadd", "sh", "-c",
                    "cd / && ls -A src sub plain && cat src/feature.txt && test -d kept/.git && "
                    "test -f kept/main.txt && echo kept").stdout_text
    assert listing == ("plain:\nmain.txt\n\nsrc:\nfeature.txt\nmain.txt\nsub\n\nsub:\ninner.txt\n"
                       "on feature\nkept\n")
    # the same commits again: the steps come from the cache
    again = _out(_build(d, tmp_path, dockerfile, "gitadd"))
    assert again.count("Using cache") == 4
    d.cli("rmi", "gitadd")


@pytest.mark.parametrize("source,message", [
    ("{url}#no-such-branch", "couldn't find remote ref no-such-branch"),
    ("{url}#feature:../..", "is outside the repository"),
    ("{url}#feature:feature.txt", "feature.txt is not a directory"),
    ("git://127.0.0.1:1/nothing.git", "ADD failed: fetching git://127.0.0.1:1/nothing.git"),
])
def test_add_git_failures_end_the_stream(d, tmp_path, served, source, message) -> None:
    lines = _build(d, tmp_path, f"FROM busybox\nADD {source.format(url=served)} /src\n", "gitbad")
    assert message in lines[-1].get("error", ""), lines[-1]
    assert d.cli("image", "inspect", "gitbad", check=False).returncode != 0


def test_a_local_path_is_not_a_git_url(d, tmp_path, served) -> None:
    # file:// and plain paths stay context paths: the daemon's own repositories are not reachable
    lines = _build(d, tmp_path, "FROM busybox\nADD file:///etc/repo.git /src\n", "gitlocal")
    assert "error" in lines[-1] and "git" not in lines[-1]["error"].split(":")[0]
