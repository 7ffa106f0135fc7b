"""The workloads: each measures one whole user command (or a daemon's memory) on one engine.

A workload is a function registered with ``@workload``: it gets a running Engine and
the shared Context and returns one sample. ``prepare`` (untimed) runs once per engine
before the rounds; ``fresh_engine`` workloads get a daemon started just for each sample.
Adding a workload (`run`, `ps -a`, `exec`, `logs`, `pull`, `build`, ...) is one function here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .engines import Engine
from .images import MiB, write_big_image, write_many_images

# After start and one `docker images`, how long a daemon sits before its RSS is read:
# long enough for start-up garbage to be collected, as on a machine that has been idle.
IDLE_SETTLE_S = 3.0


@dataclass
class Context:
    """Shared across engines and rounds: a work dir and the generated artifacts in it."""

    workdir: Path
    _artifacts: dict[str, object] = field(default_factory=dict)

    def artifact(self, key: str, build: Callable[[Path], object]) -> tuple[Path, object]:
        """The file ``key`` in the work dir, built once by ``build(path)`` (whose result is kept)."""
        path = self.workdir / key
        if key not in self._artifacts:
            self._artifacts[key] = build(path)
        return path, self._artifacts[key]


# A sample, optionally with details kept in the results file (e.g. RSS per process).
Sample = float | tuple[float, dict]
Measure = Callable[[Engine, Context], Sample]
Prepare = Callable[[Engine, Context], None]


@dataclass
class Workload:
    name: str
    unit: str
    description: str
    measure: Measure
    prepare: Prepare | None = None
    fresh_engine: bool = False


WORKLOADS: dict[str, Workload] = {}


def workload(name: str, unit: str, description: str, prepare: Prepare | None = None,
             fresh_engine: bool = False) -> Callable[[Measure], Measure]:
    def register(fn: Measure) -> Measure:
        WORKLOADS[name] = Workload(name, unit, description, fn, prepare, fresh_engine)
        return fn
    return register


# --- load -------------------------------------------------------------------------------

BIG_TAG = "bench/big:latest"


def _big_image(ctx: Context) -> tuple[Path, str]:
    path, img = ctx.artifact("big.tar", lambda p: write_big_image(str(p), BIG_TAG))
    return path, img.image_id  # type: ignore[attr-defined]


def _remove_if_present(engine: Engine, ref: str) -> None:
    if engine.cli("image", "inspect", ref, check=False).returncode == 0:
        engine.cli("rmi", ref)


def _prepare_load(engine: Engine, ctx: Context) -> None:
    _big_image(ctx)
    _remove_if_present(engine, BIG_TAG)


@workload("load", "s", "docker load -i of a 200 MiB, 5-layer docker-save tarball (image removed between rounds)",
          prepare=_prepare_load)
def load(engine: Engine, ctx: Context) -> float:
    path, image_id = _big_image(ctx)
    seconds = engine.timed("load", "-i", str(path))
    got = engine.cli("image", "inspect", "--format", "{{.Id}}", BIG_TAG).stdout_text.strip()
    if got != image_id:
        raise RuntimeError(f"{engine.name}: loaded image has ID {got}, expected {image_id}")
    engine.cli("rmi", BIG_TAG)
    # Every round must unpack every layer: an engine keeping layers after rmi would
    # turn the next load into a cache hit.
    left = _du_bytes(engine.base)
    if left > 20 * MiB:
        raise RuntimeError(f"{engine.name}: {left / MiB:.0f} MiB left under its root after rmi; "
                           "loads would not be comparable")
    return seconds


def _du_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


# --- images -----------------------------------------------------------------------------

MANY = 200


def _prepare_images(engine: Engine, ctx: Context) -> None:
    path, _ = ctx.artifact("many.tar", lambda p: write_many_images(str(p), MANY))
    engine.cli("load", "-q", "-i", str(path))
    listed = engine.cli("images", "-q", "--no-trunc").stdout_text.split()
    if len(listed) != MANY:
        raise RuntimeError(f"{engine.name}: {len(listed)} images listed after loading {MANY}")


@workload("images", "s", f"docker images with {MANY} distinct images present", prepare=_prepare_images)
def images(engine: Engine, ctx: Context) -> float:
    return engine.timed("images")


# --- idle-rss ---------------------------------------------------------------------------

@workload("idle-rss", "MiB", "daemon RSS (whole process tree) after start, one `docker images`, "
          f"{IDLE_SETTLE_S:g}s idle", fresh_engine=True)
def idle_rss(engine: Engine, ctx: Context) -> Sample:
    engine.cli("images")
    time.sleep(IDLE_SETTLE_S)
    per_process = engine.rss_kb()
    return sum(per_process.values()) / 1024, {"rss_kb": per_process}
