"""Build workloads (classic builder): 10 RUN steps uncached and cached, and a 200 MB / 20,000-file COPY.

The docker CLI picks the classic builder for both engines (no buildx here; both answer
/_ping with Builder-Version 1), as `DOCKER_BUILDKIT=0 docker build` does.
"""

from __future__ import annotations

import os
import sys
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
