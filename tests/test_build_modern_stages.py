"""Automatic platform args, stages the target does not need skipped, and the classic flags and reproducible
builds with the current Dockerfile syntax."""

from __future__ import annotations

import platform
import re

import pytest
from modern_build_helpers import build, ctx, run

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def test_platform_args_in_global_scope_and_declared_in_a_stage(d, tmp_path):
    df = ("# syntax=docker/dockerfile:1\n"
          "ARG BASE=busybox\n"
          "FROM --platform=$BUILDPLATFORM ${BASE} AS build\n"
          "ARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG BUILDPLATFORM\nARG BUILDARCH\n"
          "RUN echo \"$BUILDPLATFORM->$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDARCH\" > /p\n"
          "RUN echo \"[$TARGETVARIANT]\" > /undeclared\n")
    build(d, "-t", "mod-plat", ctx(tmp_path, df))
    assert run(d, "mod-plat", "cat", "/p") == f"linux/{ARCH}->linux/{ARCH} linux {ARCH} {ARCH}\n"
    assert run(d, "mod-plat", "cat", "/undeclared") == "[]\n"  # a stage sees only what it declares
    r = build(d, "--platform", f"linux/{ARCH}", "--build-arg", "TARGETARCH=custom", "-t", "mod-plat2",
              ctx(tmp_path, df))
    assert "were not consumed" not in r.stdout_text
    assert run(d, "mod-plat2", "cat", "/p") == f"linux/{ARCH}->linux/{ARCH} linux custom {ARCH}\n"


def test_target_builds_only_the_stages_it_needs(d, tmp_path):
    lines = []
    for i in range(10):
        base = "busybox" if i in (0, 5) else f"s{i - 1}"
        lines += [f"FROM {base} AS s{i}", f"RUN echo stage{i} > /s{i}"]
    lines += ["FROM busybox AS final", "COPY --from=s1 /s1 /a", "RUN --mount=from=s5,source=/s5,target=/m cat /m",
              "FROM final AS never", "RUN false"]
    r = build(d, "--no-cache", "--target", "final", "-t", "mod-skip", ctx(tmp_path, "\n".join(lines) + "\n"))
    out = r.stdout_text
    assert re.findall(r"Step \d+/\d+ : RUN echo stage(\d)", out) == ["0", "1", "5"]
    assert "stage5\n" in out
    assert run(d, "mod-skip", "cat", "/a") == "stage1\n"


def test_reproducible_with_source_date_epoch_and_new_instructions(d, tmp_path):
    df = ("# syntax=docker/dockerfile:1\nFROM busybox\n"
          "COPY --chmod=u+x,go-w <<EOF /s.sh\n#!/bin/sh\necho hi\nEOF\n"
          "RUN --mount=type=cache,target=/c --mount=target=/src <<EOF\ncp /src/f /f && touch /c/t\nEOF\n"
          "COPY --parents --exclude=*.log d/* /p/\n")
    c = ctx(tmp_path, df, {"f": "f\n", "d/a": "a", "d/b.log": "b"})
    ids = [build(d, "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", c).stdout_text.strip()
           for _ in range(2)]
    assert ids[0] == ids[1] and ids[0].startswith("sha256:")
    assert run(d, ids[0], "sh", "-c", "cat /f; ls /p/d") == "f\na\n"


def test_classic_flags_with_a_modern_dockerfile(d, tmp_path):
    df = ("# syntax=docker/dockerfile:1\nFROM busybox AS base\nARG V=none\n"
          "RUN --mount=type=tmpfs,target=/t echo $V > /v\nFROM base AS out\nLABEL stage=out\n")
    iid = tmp_path / "iid"
    r = build(d, "--target", "base", "--build-arg", "V=given", "--label", "who=test", "--iidfile", str(iid),
              "-t", "mod-flags", "-f", "-", str(tmp_path), input=df.encode())
    assert "Step 3/4 : RUN --mount=type=tmpfs,target=/t echo $V > /v" in r.stdout_text
    assert d.cli("image", "inspect", "-f", "{{.Id}} {{.Config.Labels.who}}", "mod-flags").stdout_text.split() == \
        [iid.read_text(), "test"]
    assert run(d, "mod-flags", "cat", "/v") == "given\n"
    again = build(d, "--target", "base", "--build-arg", "V=given", "--label", "who=test", "-f", "-",
                  str(tmp_path), input=df.encode())
    assert again.stdout_text.count(" ---> Using cache") == 3
    assert "Successfully built " + iid.read_text().removeprefix("sha256:")[:12] in again.stdout_text
