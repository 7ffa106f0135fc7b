"""Build workloads (classic builder): 10 RUN steps uncached and cached, and a 200 MB / 20,000-file COPY.

The docker CLI picks the classic builder for both engines (no buildx here; both answer
/_ping with Builder-Version 1), as `DOCKER_BUILDKIT=0 docker build` does.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .engines import Engine
from .workloads import Context, workload

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fixtures.busybox import build_busybox  # noqa: E402

STEPS = 10
FILES = 20_000
FILE_BYTES = 10_000  # 20,000 x 10 kB = 200 MB


def _ten_steps(ctx: Context) -> Path:
    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        lines = ["FROM busybox"] + [f"RUN echo step{i} > /s{i}" for i in range(STEPS)]
        (path / "Dockerfile").write_text("\n".join(lines) + "\n")
        return path
    return ctx.artifact("build-10", make)[0]


def _big_context(ctx: Context) -> Path:
    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        (path / "Dockerfile").write_text("FROM busybox\nCOPY data /data\n")
        for d in range(FILES // 1000):
            sub = path / "data" / str(d)
            sub.mkdir(parents=True, exist_ok=True)
            for f in range(1000):
                (sub / str(f)).write_bytes(os.urandom(FILE_BYTES))
        return path
    return ctx.artifact("build-ctx-200m", make)[0]


def _prepare(engine: Engine, ctx: Context) -> None:
    tar, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engine.cli("load", "-q", "-i", str(tar))
    _ten_steps(ctx)
    engine.cli("build", "-q", "-t", "bench/ten", str(_ten_steps(ctx)))


@workload("build-10-nocache", "s", f"docker build --no-cache of {STEPS} `RUN echo stepN > /sN` steps on busybox",
          prepare=_prepare)
def build_nocache(engine: Engine, ctx: Context) -> float:
    return engine.timed("build", "--no-cache", "-t", "bench/ten", str(_ten_steps(ctx)))


@workload("build-10-cached", "s", f"the same {STEPS}-step build, every step from the cache", prepare=_prepare)
def build_cached(engine: Engine, ctx: Context) -> float:
    return engine.timed("build", "-t", "bench/ten", str(_ten_steps(ctx)))


def _prepare_big(engine: Engine, ctx: Context) -> None:
    tar, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engine.cli("load", "-q", "-i", str(tar))
    _big_context(ctx)


@workload("build-copy-200m", "s", f"docker build --no-cache of one COPY of a {FILES}-file, 200 MB context",
          prepare=_prepare_big)
def build_copy(engine: Engine, ctx: Context) -> float:
    return engine.timed("build", "--no-cache", "-t", "bench/copy", str(_big_context(ctx)))


# --- the current Dockerfile syntax (issue 16) ------------------------------------------------

STAGES = 10
STAGE_STEPS = 3  # RUN steps per stage, each writing a little


def _stage_lines(i: int, base: str) -> list[str]:
    return [f"FROM {base} AS s{i}"] + [f"RUN dd if=/dev/urandom of=/s{i}-{j} bs=64k count=16 2>/dev/null"
                                       for j in range(STAGE_STEPS)]


def _multistage(ctx: Context, needed_only: bool) -> Path:
    """Ten stages; `final` needs s0 -> s1 (its base chain) and s7 (COPY --from). With ``needed_only`` the
    Dockerfile holds just those three stages and `final`: what "building those 3 alone" takes."""
    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        for i in range(STAGES):
            if needed_only and i not in (0, 1, 7):
                continue
            lines += _stage_lines(i, "busybox" if i in (0, 7) else f"s{i - 1}")
        lines += ["FROM s1 AS final", "COPY --from=s7 /s7-0 /from7"]
        (path / "Dockerfile").write_text("\n".join(lines) + "\n")
        return path
    return ctx.artifact("build-multistage-3" if needed_only else "build-multistage-10", make)[0]


def _prepare_busybox(engine: Engine, ctx: Context) -> None:
    tar, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engine.cli("load", "-q", "-i", str(tar))


@workload("build-10stage-target3", "s",
          f"docker build --no-cache --target final of a {STAGES}-stage Dockerfile ({STAGE_STEPS} RUN steps each) "
          f"whose target needs 3 stages", prepare=_prepare_busybox)
def build_multistage(engine: Engine, ctx: Context) -> float:
    return engine.timed("build", "--no-cache", "--target", "final", "-t", "bench/multi", str(_multistage(ctx, False)))


@workload("build-3stage-alone", "s",
          "the same target built from a Dockerfile holding only the 3 stages it needs (the bound for "
          "build-10stage-target3)", prepare=_prepare_busybox)
def build_three_stages(engine: Engine, ctx: Context) -> float:
    return engine.timed("build", "--no-cache", "--target", "final", "-t", "bench/multi3", str(_multistage(ctx, True)))


PACKAGES = 20
PACKAGE_MB = 4


def _cache_project(ctx: Context) -> Path:
    """A project whose dependency step "fetches" each package into a RUN --mount=type=cache directory
    unless it is already there (the fetch: 4 MB from /dev/urandom and a 0.1 s wait), after the project's
    sources are copied in, as `COPY . /app` then `pip install` is usually written."""
    def make(path: Path) -> Path:
        (path / "src").mkdir(parents=True, exist_ok=True)
        (path / "requirements.txt").write_text("".join(f"pkg{i}\n" for i in range(PACKAGES)))
        (path / "src" / "app.py").write_text("print('v0')\n")
        (path / "Dockerfile").write_text(
            "# syntax=docker/dockerfile:1\nFROM busybox\nWORKDIR /app\nCOPY . /app\n"
            "RUN --mount=type=cache,target=/root/.cache/pkgs <<EOF\n"
            "fetched=0\n"
            "for p in $(cat requirements.txt); do\n"
            "  if [ ! -f /root/.cache/pkgs/$p ]; then\n"
            f"    dd if=/dev/urandom of=/root/.cache/pkgs/$p bs=1M count={PACKAGE_MB} 2>/dev/null; sleep 0.1\n"
            "    fetched=$((fetched+1))\n"
            "  fi\n"
            "  mkdir -p /opt/site && cp /root/.cache/pkgs/$p /opt/site/$p\n"
            "done\n"
            "echo fetched=$fetched\n"
            "EOF\n")
        return path
    return ctx.artifact("build-cache-project", make)[0]


def _prepare_cache_mount(engine: Engine, ctx: Context) -> None:
    if engine.name != "dockyard":
        raise RuntimeError("dockerd 20.10's classic builder rejects RUN --mount and here-documents: run this "
                           "workload with --engines dockyard")
    _prepare_busybox(engine, ctx)
    engine.cli("build", "-q", "-t", "bench/cachemount", str(_cache_project(ctx)))  # the cache filled once


@workload("build-cache-mount", "s",
          f"docker build after a source change of a project whose RUN --mount=type=cache step installs "
          f"{PACKAGES} packages of {PACKAGE_MB} MB: the cache mount is reused, none fetched again",
          prepare=_prepare_cache_mount)
def build_cache_mount(engine: Engine, ctx: Context) -> float:
    project = _cache_project(ctx)
    app = project / "src" / "app.py"
    app.write_text(f"print({time.time_ns()})\n")  # a new source: COPY and the install step run again
    t0 = time.perf_counter()
    res = engine.cli("build", "-t", "bench/cachemount", str(project))
    elapsed = time.perf_counter() - t0
    if "fetched=0" not in res.stdout.decode(errors="replace"):
        raise AssertionError("the cache mount was not reused (a package was fetched again)")
    return elapsed


@workload("build-cache-mount-cold", "s",
          "the same build after a source change with the cache emptied first (`docker builder prune -f`, "
          f"untimed): all {PACKAGES} packages fetched, what build-cache-mount saves",
          prepare=_prepare_cache_mount)
def build_cache_mount_cold(engine: Engine, ctx: Context) -> float:
    project = _cache_project(ctx)
    (project / "src" / "app.py").write_text(f"print({time.time_ns()})\n")
    engine.cli("builder", "prune", "-f")
    t0 = time.perf_counter()
    res = engine.cli("build", "-t", "bench/cachemount", str(project))
    elapsed = time.perf_counter() - t0
    if f"fetched={PACKAGES}" not in res.stdout.decode(errors="replace"):
        raise AssertionError("the emptied cache still held packages")
    return elapsed
