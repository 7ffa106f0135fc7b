"""Volume workloads: `docker run` with a full named volume, and writing 1 GiB into a volume.

Both run with `--network none`, so they measure the mounts and not the network setup.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from .engines import Engine
from .workloads import Context, Sample, workload

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fixtures.busybox import build_busybox  # noqa: E402

MANY_FILES = 10_000
WRITE_MIB = 1024
BUSYBOX = "/bin/busybox"  # the same dd on the host as in the busybox image


def _load_busybox(engine: Engine, ctx: Context) -> None:
    tar, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engine.cli("load", "-q", "-i", str(tar))


def _prepare_many(engine: Engine, ctx: Context) -> None:
    _load_busybox(engine, ctx)
    engine.cli("volume", "create", "vol10k")
    engine.cli("run", "--rm", "--network", "none", "-v", "vol10k:/data", "busybox", "sh", "-c",
               "cd /data && for d in $(seq 0 99); do mkdir $d; for f in $(seq 0 99); do : > $d/$f; done; done")
    count = engine.cli("run", "--rm", "--network", "none", "-v", "vol10k:/data", "busybox", "sh", "-c",
                       "find /data -type f | wc -l").stdout_text.strip()
    if int(count) != MANY_FILES:
        raise RuntimeError(f"{engine.name}: {count} files in the volume, expected {MANY_FILES}")


@workload("volume-run-10k", "s", f"docker run --rm -v vol:/data busybox true, the named volume holding "
          f"{MANY_FILES} files", prepare=_prepare_many)
def volume_run_many(engine: Engine, ctx: Context) -> float:
    return engine.timed("run", "--rm", "--network", "none", "-v", "vol10k:/data", "busybox", "true")


def _mountpoint(engine: Engine, name: str) -> str:
    return engine.cli("volume", "inspect", "-f", "{{.Mountpoint}}", name).stdout_text.strip()


def _prepare_write(engine: Engine, ctx: Context) -> None:
    _load_busybox(engine, ctx)
    engine.cli("volume", "create", "volwrite")


PAIRS = 3  # container and host writes alternated; the best of each, as disk noise from others only adds


@workload("volume-write-1g", "x", f"write {WRITE_MIB} MiB (dd bs=1M, fsync) into a volume from inside a "
          "container, as a fraction of the host's speed writing to the same directory (1 = equal; best of "
          f"{PAIRS} alternated pairs per sample)", prepare=_prepare_write)
def volume_write(engine: Engine, ctx: Context) -> Sample:
    dd = f"dd if=/dev/zero of=/data/big bs=1M count={WRITE_MIB} conv=fsync 2>/dev/null"
    target = Path(_mountpoint(engine, "volwrite")) / "host-big"
    inside, host = [], []
    for _ in range(PAIRS):
        # /proc/uptime is not namespaced: the container reads the host's clock, at 10 ms resolution
        out = engine.cli("run", "--rm", "--network", "none", "-v", "volwrite:/data", "busybox", "sh", "-c",
                         f"cut -d' ' -f1 /proc/uptime; {dd}; cut -d' ' -f1 /proc/uptime; rm /data/big").stdout_text
        start, end = (float(x) for x in out.split())
        inside.append(end - start)
        began = time.monotonic()
        subprocess.run([BUSYBOX, "dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={WRITE_MIB}",
                        "conv=fsync"], check=True, capture_output=True)
        host.append(time.monotonic() - began)
        target.unlink()
    return min(host) / min(inside), {"container_s": inside, "host_s": host}
