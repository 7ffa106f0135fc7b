"""docker build side by side with the reference dockerd 20.10 (issue 15): Dockerfile paths with ``..`` and
outside the context, ``--add-host``, ``--cache-from`` as its classic builder reads it, errors on the stream."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from dockerd_side import api_of, needs_dockerd, outcome

pytestmark = needs_dockerd


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _build(api, context: bytes, **kw: Any) -> list[dict[str, Any]]:
    return list(api.build(fileobj=io.BytesIO(context), custom_context=True, decode=True, rm=True, forcerm=True,
                          **kw))


def _write(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(root)


def test_dockerfile_paths_with_dotdot_are_scoped_to_the_context(engines) -> None:
    context = _tar({"Dockerfile": "FROM busybox\nRUN echo root\n", "sub/Dockerfile": "FROM busybox\nRUN echo sub\n"})
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        rows = []
        for name in ("sub/../Dockerfile", "../Dockerfile", "/sub/./Dockerfile", "nope/Dockerfile"):
            status, body = outcome(lambda: _build(api, context, dockerfile=name, nocache=True))
            if status == 200:
                body = [m["stream"].strip() for m in body if m.get("stream", "").strip() in ("root", "sub")]
            rows.append((name, status, body))
        seen[which] = rows
    # dockerd answers an escaping path with 500 (an untyped error); dockyard with 400, the same words
    assert [(n, 500 if s == 400 else s, b) for n, s, b in seen["dockyard"]] == seen["dockerd"]
    assert [r[1:] for r in seen["dockerd"]] == [
        (200, ["root"]), (500, "forbidden path outside the build context: ../Dockerfile ()"), (200, ["sub"]),
        (500, "Cannot locate specified Dockerfile: nope/Dockerfile")]


def test_dockerfile_outside_the_context(engines, tmp_path) -> None:
    context = _write(tmp_path / "ctx", {"f.txt": "in ctx\n"})
    outside = _write(tmp_path / "elsewhere", {"Other.Dockerfile": "FROM busybox\nCOPY f.txt /f\nRUN cat /f\n"})
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        # docker-py sends it under a generated name inside the context tar, as the CLI does
        lines = list(api.build(path=context, dockerfile=f"{outside}/Other.Dockerfile", tag="df-outside",
                               decode=True, rm=True))
        cli = e.cli("build", "-q", "-f", f"{outside}/Other.Dockerfile", "-t", "df-outside-cli", context)
        seen[which] = ([m["stream"] for m in lines if m.get("stream") == "in ctx\n"],
                       e.cli("run", "--rm", "df-outside-cli", "cat", "/f").stdout_text,
                       cli.stdout_text.startswith("sha256:"))
        e.cli("rmi", "df-outside", "df-outside-cli")
    assert seen["dockyard"] == seen["dockerd"] == (["in ctx\n"], "in ctx\n", True)


def test_errors_on_the_stream_in_dockerds_shape(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        last = _build(api, _tar({"Dockerfile": "FROM busybox\nRUN exit 3\n"}))[-1]
        missing = _build(api, _tar({"Dockerfile": "FROM busybox\nCOPY nothere /x\n"}))[-1]
        seen[which] = (last, {k: missing[k] for k in ("error", "errorDetail")})
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockerd"][0]["errorDetail"]["code"] == 3


def test_extra_hosts_reach_the_run_steps(engines, tmp_path) -> None:
    context = _write(tmp_path / "c", {"Dockerfile": "FROM busybox\nRUN grep -E 'myhost|other' /etc/hosts > /h\n"})
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        _ = list(api.build(path=context, tag="xh-py", decode=True, rm=True, nocache=True, network_mode="none",
                           extra_hosts={"myhost": "10.1.2.3", "other": "fd00::7"}))
        e.cli("build", "-q", "--no-cache", "--network", "none", "--add-host", "myhost:10.9.9.9",
              "--add-host", "other:10.9.9.8", "-t", "xh-cli", context)
        bad = outcome(lambda: _build(api, _tar({"Dockerfile": "FROM busybox\nRUN true\n"}), nocache=True,
                                     extra_hosts={"x": "not-an-ip"}))
        seen[which] = ({line for line in e.cli("run", "--rm", "xh-py", "cat", "/h").stdout_text.splitlines()},
                       {line for line in e.cli("run", "--rm", "xh-cli", "cat", "/h").stdout_text.splitlines()},
                       bad[0], bad[1][-1])
        e.cli("rmi", "xh-py", "xh-cli")
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockerd"][1] == {"10.9.9.9\tmyhost", "10.9.9.8\tother"}
    assert seen["dockerd"][3]["error"] == 'invalid IP address in add-host: "not-an-ip"'


def _using_cache(lines: list[dict[str, Any]]) -> int:
    return sum("Using cache" in m.get("stream", "") for m in lines)


def test_cache_from_as_dockerds_classic_builder(engines, tmp_path) -> None:
    # docker-py's own integration test: a local cache hit counts only inside a --cache-from image's chain
    dockerfile = "FROM busybox\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n"
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        first = _build(api, _tar({"Dockerfile": dockerfile}), tag="cf-build1")
        again = _build(api, _tar({"Dockerfile": dockerfile}), tag="cf-build2", cache_from=["cf-build1"])
        api.remove_image("cf-build2")
        none = _build(api, _tar({"Dockerfile": dockerfile}), tag="cf-build2", cache_from=["nosuchtag"])
        # a fresh image store's view: the image saved, the local cache gone, loaded back
        saved = str(tmp_path / f"{which}.tar")
        e.cli("save", "-o", saved, "cf-build1")
        e.cli("rmi", "cf-build1", "cf-build2")
        e.cli("builder", "prune", "-f")
        e.cli("load", "-q", "-i", saved)
        loaded = _build(api, _tar({"Dockerfile": dockerfile}), tag="cf-build3", cache_from=["cf-build1"])
        same = api.inspect_image("cf-build3")["Id"] == api.inspect_image("cf-build1")["Id"]
        seen[which] = (_using_cache(first), _using_cache(again), _using_cache(none), _using_cache(loaded), same)
        e.cli("rmi", "cf-build1", "cf-build3", check=False)
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockerd"][1:] == (3, 0, 3, True)


def _steps(lines: list[dict[str, Any]]) -> list[str]:
    """The stream without IDs: what a user reads of the build (steps, triggers, cache hits, output)."""
    text = "".join(m.get("stream", "") or m.get("error", "") for m in lines)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not (line.startswith("--->") and line != "---> Using cache") \
                and not line.startswith(("Removing intermediate", "Successfully")):
            out.append(line)
    return out


def test_onbuild_triggers_in_multi_stage_builds_and_the_cache(engines) -> None:
    base = _tar({"Dockerfile": "FROM busybox\nONBUILD COPY --from=assets /a /a\nONBUILD RUN echo trig > /t\n"})
    child = _tar({"Dockerfile": "FROM busybox AS assets\nRUN echo asset > /a\nFROM ob-base\nRUN cat /a /t\n"
                                "FROM busybox AS one\nONBUILD RUN echo fired > /fired\n"
                                "FROM one AS two\nRUN cat /fired\nCOPY --from=1 /a /b\n"})
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        _build(api, base, tag="ob-base", nocache=True)
        first = _build(api, child, tag="ob-child", nocache=True)
        again = _build(api, child, tag="ob-child")
        files = e.cli("run", "--rm", "ob-child", "cat", "/fired", "/b").stdout_text
        seen[which] = (_steps(first), _steps(again), files)
        e.cli("rmi", "ob-child", "ob-base", check=False)
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockerd"][1].count("---> Using cache") == 8 and seen["dockerd"][2] == "fired\nasset\n"
