"""``dockyard build``: contexts (directory with .dockerignore, tar and Dockerfile on stdin, -f -) and flags."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def dy(d, *args: str, input: bytes | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run([DOCKYARD, *args], input=input, capture_output=True, env=d.env(), timeout=120, cwd=cwd)
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()
    return res


def files_in(d, image: str) -> str:
    return d.cli("run", "--rm", image, "sh", "-c", "cd /ctx && find . | sort").stdout_text


def test_directory_context_flags_and_dockerignore(d, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "keep.txt").write_text("k")
    (ctx / "sub" / "skip.log").write_text("s")
    (ctx / "sub" / "important.log").write_text("i")
    (ctx / ".dockerignore").write_text("**/*.log\n!sub/important.log\nDockerfile\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS base\nRUN echo base > /base\nFROM base AS final\nARG V\nCOPY . /ctx\n"
        "RUN echo $V > /v\nFROM final AS never\nRUN false\n")
    iid = tmp_path / "iid"
    res = dy(d, "build", "-t", "dyb:1", "-t", "dyb:2", "--build-arg", "V=val", "--target", "final",
             "--label", "l=x", "--no-cache", "--force-rm", "--network", "none", "--iidfile", str(iid), str(ctx))
    out = res.stdout.decode()
    assert "Step 1/" in out and "Successfully tagged dyb:1" in out and "Successfully tagged dyb:2" in out
    image_id = iid.read_text()
    assert d.cli("image", "inspect", "-f", "{{.Id}} {{.Config.Labels.l}}", "dyb:2").stdout_text.split() == \
        [image_id, "x"]
    # the Dockerfile and .dockerignore are sent even though ignored, and dockerd drops them again
    assert files_in(d, "dyb:1") == ".\n./.dockerignore\n./keep.txt\n./sub\n./sub/important.log\n"
    assert d.cli("run", "--rm", "dyb:1", "cat", "/v").stdout_text == "val\n"


def test_stdin_contexts_and_quiet(d, tmp_path):
    res = dy(d, "build", "-q", "-t", "dyb-df", "-", input=b"FROM busybox\nRUN echo lone > /lone\n")
    assert res.stdout.decode().strip().startswith("sha256:")
    assert d.cli("run", "--rm", "dyb-df", "cat", "/lone").stdout_text == "lone\n"

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY f /ctx/f\n"), ("f", b"tar")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dy(d, "build", "-q", "-t", "dyb-tar", "-", input=buf.getvalue())
    assert d.cli("run", "--rm", "dyb-tar", "cat", "/ctx/f").stdout_text == "tar"

    ctx = tmp_path / "c"
    ctx.mkdir()
    (ctx / "f").write_text("dir")
    dy(d, "build", "-q", "-t", "dyb-fstdin", "-f", "-", str(ctx), input=b"FROM busybox\nCOPY f /ctx/f\n")
    assert d.cli("run", "--rm", "dyb-fstdin", "cat", "/ctx/f").stdout_text == "dir"

    outside = tmp_path / "Other.Dockerfile"
    outside.write_text("FROM busybox\nCOPY f /ctx/g\n")
    dy(d, "build", "-q", "-t", "dyb-outside", "-f", str(outside), str(ctx))
    assert d.cli("run", "--rm", "dyb-outside", "cat", "/ctx/g").stdout_text == "dir"


def test_failure_exit_status(d, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    res = subprocess.run([DOCKYARD, "build", str(tmp_path)], capture_output=True, env=d.env(), timeout=120)
    assert res.returncode == 1
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in res.stderr.decode()
