"""docker build (classic builder) through the real CLI and docker-py."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

LEGACY = {"DOCKER_BUILDKIT": "0"}


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> str:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(tmp_path)


def build(d, *args: str, input: bytes | None = None, check: bool = True):
    """The CLI's default: docker 28 picks the classic builder when /_ping says Builder-Version: 1."""
    return d.cli("build", *args, input=input, check=check)


def legacy_build(d, *args: str) -> str:
    """``DOCKER_BUILDKIT=0 docker build``."""
    res = subprocess.run(["docker", "build", *args], capture_output=True, env={**d.env(), **LEGACY}, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode()


def containers(d) -> list[str]:
    return d.cli("ps", "-aq").stdout_text.split()


def image_ids(d) -> set[str]:
    return set(d.cli("images", "-aq", "--no-trunc").stdout_text.split())


def test_basic_build_output_and_result(d, tmp_path):
    c = ctx(tmp_path, "FROM busybox\nARG X=1\nENV A=b\nRUN echo hi $X > /hi\nCOPY f /f\nCMD [\"cat\", \"/hi\"]\n",
            {"f": "hello\n"})
    r = build(d, "-t", "basic:1", "-t", "basic:2", c)
    out = r.stdout_text
    assert "Step 1/6 : FROM busybox" in out and "Step 4/6 : RUN echo hi $X > /hi" in out
    assert " ---> Running in " in out and "Removing intermediate container" in out
    assert "Successfully tagged basic:1" in out and "Successfully tagged basic:2" in out
    assert d.cli("run", "--rm", "basic:1").stdout_text == "hi 1\n"
    assert d.cli("run", "--rm", "basic:2", "cat", "/f").stdout_text == "hello\n"
    env = json.loads(d.cli("inspect", "-f", "{{json .Config.Env}}", "basic:1").stdout_text)
    assert "A=b" in env
    history = d.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "basic:1").stdout_text
    assert "|1 X=1 /bin/sh -c echo hi $X > /hi" in history
    assert not [x for x in containers(d) if x]
    # the same again: every step from the cache, same image
    again = legacy_build(d, "-t", "basic:1", c)
    assert again.count(" ---> Using cache") == 5
    first_id = out.split("Successfully built ")[1].split()[0]
    assert f"Successfully built {first_id}" in again
    # a changed COPY source busts the cache from that step on
    (tmp_path / "f").write_text("changed\n")
    third = build(d, "-t", "basic:1", c).stdout_text
    assert third.count(" ---> Using cache") == 3
    assert d.cli("run", "--rm", "basic:1", "cat", "/f").stdout_text == "changed\n"
    assert build(d, "--no-cache", c).stdout_text.count("Using cache") == 0


def test_raw_stream_lines(d, tmp_path):
    ctx(tmp_path, "FROM busybox\nRUN echo out\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(tmp_path / "Dockerfile", "Dockerfile")
    api = d.api()
    lines = list(api.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, decode=True, tag="raw:1", rm=True))
    streams = [m.get("stream") for m in lines]
    assert streams[:3] == ["Step 1/2 : FROM busybox", "\n", streams[2]]
    assert streams[2].startswith(" ---> ")
    assert "out\n" in streams
    aux = [m["aux"]["ID"] for m in lines if "aux" in m]
    assert aux and aux[0].startswith("sha256:")
    assert lines[-1] == {"stream": "Successfully tagged raw:1\n"}


def test_failing_run_reports_and_moves_no_tag(d, tmp_path):
    build(d, "-t", "failtag", ctx(tmp_path, "FROM busybox\nRUN true\n"))
    before = d.cli("inspect", "-f", "{{.Id}}", "failtag").stdout_text
    c = ctx(tmp_path, "FROM busybox\nRUN echo x > /x\nRUN false\n")
    r = build(d, "--force-rm", "-t", "failtag", c, check=False)
    assert r.returncode != 0
    assert "The command '/bin/sh -c false' returned a non-zero code: 1" in r.stderr_text
    assert d.cli("inspect", "-f", "{{.Id}}", "failtag").stdout_text == before
    assert not [x for x in containers(d) if x]
    api = d.api()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(tmp_path / "Dockerfile", "Dockerfile")
    lines = list(api.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, decode=True, forcerm=True))
    assert lines[-1]["errorDetail"] == {"code": 1,
                                        "message": "The command '/bin/sh -c false' returned a non-zero code: 1"}


@pytest.mark.parametrize("dockerfile,message", [
    ("FROM busybox\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM busybox\nRUN --bad=1 true\n", "dockerfile parse error line 2: Unknown flag: bad"),
    ("FROM busybox\nCOPY ../x /\n", "COPY failed: forbidden path outside the build context: ../x ()"),
    ("FROM busybox\nCOPY nothere /\n", "COPY failed: file not found in build context or excluded by .dockerignore: "
                                       "stat nothere: file does not exist"),
    ("FROM busybox AS a\nFROM busybox\nCOPY --from=2 /x /\n", "invalid from flag value 2"),
    ("# only a comment\n", "the Dockerfile (Dockerfile) cannot be empty"),
    ("FROM $NOPE\n", "base name ($NOPE) should not be blank"),
    ("RUN true\n", "dockerfile parse error line 1: no build stage in current context"),
])
def test_bad_input_leaves_nothing(d, tmp_path, dockerfile, message):
    before = image_ids(d)
    r = build(d, ctx(tmp_path, dockerfile), check=False)
    assert r.returncode != 0
    assert message in r.stderr_text
    assert image_ids(d) == before
    assert not [x for x in containers(d) if x]


def test_arg_used_before_definition_is_empty(d, tmp_path):
    c = ctx(tmp_path, "FROM busybox\nRUN echo \"[$V]\" > /before\nARG V=set\nRUN echo \"[$V]\" > /after\n")
    build(d, "-t", "argorder", c)
    assert d.cli("run", "--rm", "argorder", "cat", "/before", "/after").stdout_text == "[]\n[set]\n"
    r = build(d, ctx(tmp_path, "ARG V\nFROM busybox:$V\n"), check=False)
    assert "invalid reference format" in r.stderr_text


def test_escaping_context_tar_refused(d, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"FROM busybox\n"
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
        evil = tarfile.TarInfo("../../escaped")
        evil.size = 1
        t.addfile(evil, io.BytesIO(b"x"))
    r = build(d, "-", input=buf.getvalue(), check=False)
    assert r.returncode != 0 and "escapes" in r.stderr_text


def test_contexts_from_stdin(d, tmp_path):
    df = b"FROM busybox\nCOPY a /a\nRUN cat /a\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in (("Dockerfile", df), ("a", b"from-tar\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    import bz2
    import lzma
    for body in (raw, gzip.compress(raw), bz2.compress(raw), lzma.compress(raw)):
        assert "from-tar" in build(d, "--no-cache", "-", input=body).stdout_text
    # a Dockerfile alone on stdin
    assert "alone" in build(d, "-", input=b"FROM busybox\nRUN echo alone\n").stdout_text


def test_multistage_target_and_copy_from(d, tmp_path):
    c = ctx(tmp_path, "ARG BASE=busybox\n"
                      "FROM $BASE AS one\nRUN echo one > /one\n"
                      "FROM busybox AS unused\nRUN echo SHOULD-NOT-RUN\n"
                      "FROM ${BASE} AS two\nCOPY --from=one /one /copied/\nCOPY --from=0 /one /byindex\n"
                      "WORKDIR /app/sub\nRUN pwd > /pwd\n"
                      "FROM two AS three\nRUN echo three\n")
    out = build(d, "--target", "two", "-t", "ms", c).stdout_text
    assert "SHOULD-NOT-RUN" not in out and "three" not in out
    assert d.cli("run", "--rm", "ms", "cat", "/copied/one", "/byindex", "/pwd").stdout_text == "one\none\n/app/sub\n"
    r = build(d, "--target", "nope", c, check=False)
    assert "failed to reach build target nope in Dockerfile" in r.stderr_text


def test_instructions_config(d, tmp_path):
    c = ctx(tmp_path, "FROM busybox\nLABEL a=1 \"b c\"=\"d e\"\nEXPOSE 80 53/udp\nVOLUME /data\nUSER 1000:1000\n"
                      "STOPSIGNAL SIGTERM\nENV P=/x Q=${P:-no}/y R=${UNSET:-dflt} S=${P:+alt}\n"
                      "ENV OLD legacy value\nHEALTHCHECK --interval=5s --retries=3 CMD true\n"
                      "SHELL [\"/bin/sh\", \"-ec\"]\nONBUILD RUN echo trig\nMAINTAINER someone\n"
                      "ENTRYPOINT [\"/bin/sh\"]\n")
    build(d, "--label", "extra=yes", "-t", "cfg", c)
    cfg = json.loads(d.cli("inspect", "-f", "{{json .Config}}", "cfg").stdout_text)
    assert cfg["Labels"] == {"a": "1", "b c": "d e", "extra": "yes"}
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert set(cfg["Volumes"]) == {"/data"}
    assert cfg["User"] == "1000:1000" and cfg["StopSignal"] == "SIGTERM"
    assert {"P=/x", "Q=no/y", "R=dflt", "S=", "OLD=legacy value"} <= set(cfg["Env"])
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 3}
    assert cfg["Shell"] == ["/bin/sh", "-ec"] and cfg["OnBuild"] == ["RUN echo trig"]
    assert cfg["Entrypoint"] == ["/bin/sh"] and cfg.get("Cmd") is None
    assert d.cli("inspect", "-f", "{{.Author}}", "cfg").stdout_text.strip() == "someone"
    child = build(d, "-", input=b"FROM cfg\nRUN true\n").stdout_text
    assert "trig" in child


def test_copy_semantics(d, tmp_path):
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "x.txt").write_text("x")
    (tmp_path / "dir" / "y.txt").write_text("y")
    (tmp_path / "g1.md").write_text("1")
    (tmp_path / "g2.md").write_text("2")
    arch = tmp_path / "a.tar.gz"
    with tarfile.open(arch, "w:gz") as t:
        info = tarfile.TarInfo("inner/file")
        info.size = 5
        t.addfile(info, io.BytesIO(b"inner"))
    c = ctx(tmp_path, "FROM busybox\nCOPY dir /d1\nCOPY dir/ /d2/\nCOPY g*.md /globs/\n"
                      "COPY --chown=1:2 --chmod=600 g1.md /owned\nADD a.tar.gz /ex/\n"
                      "WORKDIR /w\nCOPY g1.md rel\n"
                      "RUN ls /d1 /d2 /globs && cat /ex/inner/file /w/rel && stat -c '%u:%g %a' /owned\n")
    out = build(d, "--no-cache", c).stdout_text
    assert "sub\ny.txt\n" in out and "g1.md\ng2.md" in out
    assert "inner1" in out and "1:2 600" in out
    r = build(d, ctx(tmp_path, "FROM busybox\nCOPY g1.md g2.md /notadir\n"), check=False)
    assert "the destination must be a directory and end with a /" in r.stderr_text


def test_dockerignore_via_cli(d, tmp_path):
    c = ctx(tmp_path, "FROM busybox\nCOPY . /ctx\nRUN find /ctx | sort\n",
            {"keep.txt": "k", "secret.key": "s", "logs/a.log": "a", "logs/keep.log": "k", "deep/x/y.tmp": "t"})
    (tmp_path / ".dockerignore").write_text("*.key\nlogs\n!logs/keep.log\n**/*.tmp\nDockerfile\n.dockerignore\n")
    out = build(d, "--no-cache", c).stdout_text
    assert "/ctx/keep.txt" in out and "/ctx/logs/keep.log" in out
    assert "secret.key" not in out and "a.log" not in out and "y.tmp" not in out


def test_heredoc_and_escape_directive(d, tmp_path):
    c = ctx(tmp_path, "# escape=`\nFROM busybox\nRUN echo one `\n    two > /cont\n"
                      "RUN <<EOF\necho heredoc > /h\nEOF\n")
    build(d, "-t", "hd", c)
    assert d.cli("run", "--rm", "hd", "cat", "/cont", "/h").stdout_text == "one two\nheredoc\n"


def test_reproducible_with_source_date_epoch(d, tmp_path):
    c = ctx(tmp_path, "FROM busybox\nCOPY f /f\nRUN echo made > /made\nENV X=1\n", {"f": "data"})
    ids = []
    for _ in range(2):
        out = build(d, "--no-cache", "-q", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", c).stdout_text
        ids.append(out.strip())
        os.utime(tmp_path / "f")
    assert ids[0] == ids[1] and ids[0].startswith("sha256:")
    created = d.cli("inspect", "-f", "{{.Created}}", ids[0]).stdout_text.strip()
    assert created.startswith("2023-11-14T22:13:20")


def test_docker_py_build_iidfile_and_prune(d, tmp_path):
    client = d.client()
    c = ctx(tmp_path, "FROM busybox\nARG MSG\nRUN echo $MSG > /msg\n")
    image, logs = client.images.build(path=c, tag="pybuild", buildargs={"MSG": "py"}, rm=True)
    assert any("Successfully built" in (x.get("stream") or "") for x in logs)
    assert client.containers.run("pybuild", "cat /msg", remove=True) == b"py\n"
    iid = tmp_path / "iid"
    build(d, "--iidfile", str(iid), "--build-arg", "MSG=py", c)
    assert iid.read_text() == image.id
    df = json.loads(d.cli("system", "df", "--format", "{{json .}}").stdout_text.splitlines()[-1])
    assert df["Type"] == "Build Cache" and int(df["TotalCount"]) > 0
    d.cli("builder", "prune", "-f")
    out = build(d, "--build-arg", "MSG=py", c).stdout_text
    assert "Using cache" not in out
