"""The docker/dockerfile:1 frontend's parser directives and here-documents in the classic /build builder."""

from __future__ import annotations

import io
import tarfile

import docker
import pytest
from modern_build_helpers import build, ctx, run


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


@pytest.mark.parametrize("syntax", ["docker/dockerfile:1", "docker/dockerfile:1.7", "docker/dockerfile:1.4.3",
                                    "docker.io/docker/dockerfile:1", "docker/dockerfile:1-labs",
                                    "docker/dockerfile:1.7-labs", "docker/dockerfile"])
def test_syntax_of_the_current_frontend_is_accepted(d, tmp_path, syntax):
    r = build(d, "-q", ctx(tmp_path, f"# syntax={syntax}\nFROM busybox\nRUN echo ok > /ok\n"))
    assert run(d, r.stdout_text.strip(), "cat", "/ok") == "ok\n"


@pytest.mark.parametrize("syntax", ["foo/bar:1", "docker/dockerfile:2", "myregistry.example/docker/dockerfile:1",
                                    "docker/dockerfile:0.9"])
def test_unknown_syntax_image_is_refused(d, tmp_path, syntax):
    r = build(d, ctx(tmp_path, f"# syntax={syntax}\nFROM busybox\n"), check=False)
    assert r.returncode != 0
    assert "dockerfile parse error line 1: unsupported syntax image" in r.stderr_text and syntax in r.stderr_text
    assert "Step 1/" not in r.stdout_text


def test_escape_and_check_directives(d, tmp_path):
    df = ("# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=JSONArgsRecommended;error=true\n"
          "FROM busybox\nRUN echo a `\n  b > /ab\n")
    r = build(d, "-q", ctx(tmp_path / "ok", df))
    assert run(d, r.stdout_text.strip(), "cat", "/ab") == "a b\n"
    bad = build(d, ctx(tmp_path / "bad", "# check=error=maybe\nFROM busybox\n"), check=False)
    assert bad.returncode != 0 and "line 1: invalid check directive" in bad.stderr_text
    # a directive after a comment or instruction is a comment, as the frontend reads it
    late = build(d, "-q", ctx(tmp_path / "late", "FROM busybox\n# syntax=foo/bar\nRUN true\n"))
    assert late.returncode == 0


def test_run_heredocs(d, tmp_path):
    df = ("# syntax=docker/dockerfile:1\nFROM busybox\nARG NAME=world\n"
          "RUN <<EOF\necho one > /one\necho hello $NAME > /hello\nEOF\n"
          "RUN <<-EOT\n\techo tabs stripped > /tabs\n\tEOT\n"
          "RUN cat <<A > /a && cat <<'B' > /b\nvalue $NAME\nA\nliteral $NAME\nB\n"
          "RUN <<EOF\n#!/bin/sh\necho \"run as $0\" > /shebang\nEOF\n"
          "RUN <<EOT sh\necho fed on stdin > /stdin\nEOT\n")
    r = build(d, "--no-cache", "-t", "mod-heredoc", ctx(tmp_path, df))
    assert "Step 3/7 : RUN <<EOF" in r.stdout_text
    out = run(d, "mod-heredoc", "cat", "/one", "/hello", "/tabs", "/a", "/b", "/shebang", "/stdin")
    assert out == ("one\nhello world\ntabs stripped\nvalue world\nliteral $NAME\nrun as /dev/pipes/EOF\n"
                   "fed on stdin\n")
    again = build(d, "-t", "mod-heredoc", ctx(tmp_path, df))
    assert again.stdout_text.count(" ---> Using cache") == 6


def test_shebang_scripts_with_other_content_are_not_cache_hits(d, tmp_path):
    one = build(d, "-q", ctx(tmp_path / "1", "FROM busybox\nRUN <<EOF\n#!/bin/sh\necho 1 > /v\nEOF\n"))
    two = build(d, "-q", ctx(tmp_path / "2", "FROM busybox\nRUN <<EOF\n#!/bin/sh\necho 2 > /v\nEOF\n"))
    assert run(d, one.stdout_text.strip(), "cat", "/v") == "1\n"
    assert run(d, two.stdout_text.strip(), "cat", "/v") == "2\n"


def test_copy_heredocs_with_chmod_and_expansion(d, tmp_path):
    df = ("FROM busybox\nARG X=5\n"
          "COPY --chmod=755 <<EOF /s.sh\n#!/bin/sh\necho x=$X\nEOF\n"
          "COPY <<'RAW' <<ONE /dir/\nraw $X\nRAW\none $X\nONE\n")
    build(d, "-t", "mod-copyhd", ctx(tmp_path, df))
    assert run(d, "mod-copyhd", "/s.sh") == "x=5\n"
    assert run(d, "mod-copyhd", "stat", "-c", "%a", "/s.sh") == "755\n"
    assert run(d, "mod-copyhd", "cat", "/dir/RAW", "/dir/ONE") == "raw $X\none 5\n"


def test_unterminated_heredoc_names_the_line(d, tmp_path):
    r = build(d, ctx(tmp_path, "FROM busybox\nRUN true\nRUN <<EOF\necho never\n"), check=False)
    assert r.returncode != 0 and "dockerfile parse error line 3: unterminated heredoc EOF" in r.stderr_text
    assert "Step 1/" not in r.stdout_text


def test_docker_py_builds_a_modern_dockerfile(d):
    client = docker.DockerClient(base_url=d.host, version="auto", timeout=120)
    df = b"# syntax=docker/dockerfile:1\nFROM busybox\nRUN <<EOF\necho py > /py\nEOF\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
    buf.seek(0)
    image, logs = client.images.build(fileobj=buf, custom_context=True, tag="mod-py")
    assert any("Step 2/2 : RUN <<EOF" in (m.get("stream") or "") for m in logs)
    assert client.containers.run("mod-py", ["cat", "/py"], remove=True) == b"py\n"
