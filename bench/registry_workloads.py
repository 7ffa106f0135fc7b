"""Registry workloads: `docker pull` and `docker push` of the 200 MiB, 5-layer bench image over plain HTTP.

Both engines talk to Debian's docker-registry on 127.0.0.1 (dockerd 20.10 uses
plain HTTP for loopback registries without configuration, as dockyardd does).
"""

from __future__ import annotations

import atexit
import shutil
from pathlib import Path

from registry import Registry  # tests/registry.py (engines.py puts tests/ on sys.path)

from .engines import Engine
from .workloads import BIG_TAG, Context, _big_image, _remove_if_present, workload

REPO = "bench/big:latest"


def _source_registry(ctx: Context) -> Registry:
    """One registry holding the bench image, shared by every engine and round."""

    def build(path: Path) -> Registry:
        reg = Registry(path).start()
        atexit.register(reg.stop)
        tar, _ = _big_image(ctx)
        reg.skopeo_copy(f"docker-archive:{tar}", REPO)
        return reg

    _, reg = ctx.artifact("pull-registry", build)
    return reg  # type: ignore[return-value]


def _prepare_pull(engine: Engine, ctx: Context) -> None:
    reg = _source_registry(ctx)
    _remove_if_present(engine, f"{reg.host}/{REPO}")


@workload("pull", "s", "docker pull of a 200 MiB, 5-layer image from a local registry (image removed between "
          "rounds)", prepare=_prepare_pull)
def pull(engine: Engine, ctx: Context) -> float:
    reg = _source_registry(ctx)
    name = f"{reg.host}/{REPO}"
    seconds = engine.timed("pull", "-q", name)
    _, image_id = _big_image(ctx)
    got = engine.cli("image", "inspect", "--format", "{{.Id}}", name).stdout_text.strip()
    if got != image_id:
        raise RuntimeError(f"{engine.name}: pulled image has ID {got}, expected {image_id}")
    engine.cli("rmi", name)
    return seconds


def _prepare_push(engine: Engine, ctx: Context) -> None:
    tar, _ = _big_image(ctx)
    if engine.cli("image", "inspect", BIG_TAG, check=False).returncode != 0:
        engine.cli("load", "-q", "-i", str(tar))


@workload("push", "s", "docker push of the 200 MiB, 5-layer image to an empty local registry (new one each round)",
          prepare=_prepare_push)
def push(engine: Engine, ctx: Context) -> float:
    base = ctx.workdir / f"push-registry-{engine.name}"
    shutil.rmtree(base, ignore_errors=True)
    with Registry(base) as reg:
        name = f"{reg.host}/{REPO}"
        engine.cli("tag", BIG_TAG, name)
        seconds = engine.timed("push", name)
        engine.cli("rmi", name)
    shutil.rmtree(base, ignore_errors=True)
    return seconds
