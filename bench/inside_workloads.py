"""Inside-container workloads (issue 4): exec, cp-out, cp-in, stats20.

Containers run the tests' busybox image with ``--network none`` on both engines (the
reference dockerd runs with ``--bridge none``), so the figures compare exec, archive and
stats paths, not networking. Each workload keeps its containers for all rounds.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

from .container_workloads import IMAGE, NET, _prepare_busybox
from .engines import Engine
from .workloads import Context, workload

TREE_DIRS = 50
TREE_FILES = 20  # per directory
TREE_FILE_SIZE = 100 * 1024  # 50 x 20 x 100 KiB = 100 MiB
STATS_CONTAINERS = 20


def _build_tree(path: Path) -> int:
    """A 100 MiB directory tree of incompressible files (fixed seed, so both engines copy the same bytes)."""
    rng = random.Random(4)
    total = 0
    for d in range(TREE_DIRS):
        sub = path / f"d{d:02}"
        sub.mkdir(parents=True)
        for f in range(TREE_FILES):
            data = rng.randbytes(TREE_FILE_SIZE)
            (sub / f"f{f:02}.bin").write_bytes(data)
            total += len(data)
    return total


def _tree(ctx: Context) -> tuple[Path, int]:
    path, total = ctx.artifact("tree100m", _build_tree)
    return path, int(total)  # type: ignore[arg-type]


def _du(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _run_sleeper(engine: Engine, name: str) -> None:
    engine.cli("rm", "-f", name, check=False)
    engine.cli("run", "-d", "--name", name, *NET, IMAGE, "sleep", "100000")


# --- exec ------------------------------------------------------------------------------
def _prepare_exec(engine: Engine, ctx: Context) -> None:
    _prepare_busybox(engine, ctx)
    _run_sleeper(engine, "bench-exec")


@workload("exec", "s", "docker exec C true in a running container", prepare=_prepare_exec)
def exec_(engine: Engine, ctx: Context) -> float:
    return engine.timed("exec", "bench-exec", "true")


# --- cp ---------------------------------------------------------------------------------
def _prepare_cp(engine: Engine, ctx: Context) -> None:
    _prepare_busybox(engine, ctx)
    _run_sleeper(engine, "bench-cp")
    tree, _ = _tree(ctx)
    engine.cli("cp", str(tree), "bench-cp:/src")


@workload("cp-out", "s", f"docker cp of a 100 MiB tree ({TREE_DIRS * TREE_FILES} files) out of a running "
          "container", prepare=_prepare_cp)
def cp_out(engine: Engine, ctx: Context) -> float:
    _, total = _tree(ctx)
    dest = ctx.workdir / f"cp-out-{engine.name}"
    shutil.rmtree(dest, ignore_errors=True)
    seconds = engine.timed("cp", "bench-cp:/src", str(dest))
    got = _du(dest)
    shutil.rmtree(dest, ignore_errors=True)
    if got != total:
        raise RuntimeError(f"{engine.name}: docker cp out gave {got} bytes, not {total}")
    return seconds


@workload("cp-in", "s", f"docker cp of a 100 MiB tree ({TREE_DIRS * TREE_FILES} files) into a running "
          "container", prepare=_prepare_cp)
def cp_in(engine: Engine, ctx: Context) -> float:
    tree, total = _tree(ctx)
    engine.cli("exec", "bench-cp", "rm", "-rf", "/dst")
    seconds = engine.timed("cp", str(tree), "bench-cp:/dst")
    got = int(engine.cli("exec", "bench-cp", "sh", "-c", "cat /dst/*/* | wc -c").stdout_text.strip())
    if got != total:
        raise RuntimeError(f"{engine.name}: docker cp in stored {got} bytes, not {total}")
    return seconds


# --- stats ------------------------------------------------------------------------------
def _prepare_stats(engine: Engine, ctx: Context) -> None:
    _prepare_busybox(engine, ctx)
    for i in range(STATS_CONTAINERS):
        _run_sleeper(engine, f"bench-stats-{i}")


@workload("stats20", "s", f"docker stats --no-stream with {STATS_CONTAINERS} running containers",
          prepare=_prepare_stats)
def stats20(engine: Engine, ctx: Context) -> float:
    t0 = time.perf_counter()
    rows = engine.cli("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}").stdout_text.splitlines()
    seconds = time.perf_counter() - t0
    if len(rows) != STATS_CONTAINERS:
        raise RuntimeError(f"{engine.name}: docker stats listed {len(rows)} containers")
    return seconds
