"""Container workloads (issue 3): run, run20, logs, shim-rss, ps300, containers-json.

Both engines run the busybox image the tests build (loaded during preparation) with
``--network none``: each container gets its own network namespace with loopback and
nothing else on both engines (dockyard has no bridge yet; the reference dockerd runs
with ``--bridge none``), so the figures compare container lifecycles, not networking.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from .engines import Engine
from .workloads import Context, Sample, workload

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fixtures.busybox import build_busybox  # noqa: E402

IMAGE = "busybox:latest"
NET = ("--network", "none")
LOG_LINES = 1_700_000
LOG_LINE = b"12345\n"  # 1.7 million 6-byte lines: 10.2 MB
IDLE_CONTAINERS = 10
PS_CONTAINERS = 300
LIST_REQUESTS = 200


def _prepare_busybox(engine: Engine, ctx: Context) -> None:
    path, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engine.cli("load", "-i", str(path))


def _remove_all(engine: Engine) -> None:
    ids = engine.cli("ps", "-aq").stdout_text.split()
    if ids:
        engine.cli("rm", "-f", *ids)


@workload("run", "s", "docker run --rm busybox true", prepare=_prepare_busybox)
def run(engine: Engine, ctx: Context) -> float:
    return engine.timed("run", "--rm", *NET, IMAGE, "true")


@workload("run20", "s", "20 concurrent docker run --rm busybox true (wall time)", prepare=_prepare_busybox)
def run20(engine: Engine, ctx: Context) -> float:
    env = engine.daemon.env()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["docker", "run", "--rm", *NET, IMAGE, "true"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(20)]
    failures = [p.stderr.read().decode() for p in procs if p.wait() != 0]  # type: ignore[union-attr]
    seconds = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{engine.name}: {len(failures)} runs failed: {failures[0]}")
    return seconds


@workload("logs", "s", f"a container writes {LOG_LINES} lines ({LOG_LINES * len(LOG_LINE) / 1e6:.1f} MB), "
          "then docker logs of all of it (every byte checked)", prepare=_prepare_busybox)
def logs(engine: Engine, ctx: Context) -> float:
    expected = hashlib.sha256(LOG_LINE * LOG_LINES).hexdigest()
    t0 = time.perf_counter()
    cid = engine.cli("run", "-d", *NET, IMAGE, "sh", "-c",
                     f"yes {LOG_LINE.decode().strip()} | head -n {LOG_LINES}").stdout_text.strip()
    engine.cli("wait", cid)
    out = engine.cli("logs", cid).stdout
    seconds = time.perf_counter() - t0
    engine.cli("rm", cid)
    if hashlib.sha256(out).hexdigest() != expected:
        raise RuntimeError(f"{engine.name}: docker logs gave {len(out)} bytes, not the {LOG_LINES} lines written")
    return seconds


def _prepare_idle(engine: Engine, ctx: Context) -> None:
    _prepare_busybox(engine, ctx)
    _remove_all(engine)


@workload("shim-rss", "MiB", f"RSS per idle running container of the shim processes ({IDLE_CONTAINERS} "
          "containers running sleep)", prepare=_prepare_idle)
def shim_rss(engine: Engine, ctx: Context) -> Sample:
    for _ in range(IDLE_CONTAINERS):
        engine.cli("run", "-d", *NET, IMAGE, "sleep", "1000")
    time.sleep(1.0)
    shims = _shims_under(str(engine.base))
    _remove_all(engine)
    if len(shims) < IDLE_CONTAINERS:
        raise RuntimeError(f"{engine.name}: found {len(shims)} shims for {IDLE_CONTAINERS} containers")
    total_kb = sum(shims.values())
    return total_kb / 1024 / IDLE_CONTAINERS, {"shims": shims}


def _shims_under(base: str) -> dict[str, int]:
    """RSS (kB) of every shim process whose command line names a path under ``base``."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
        except OSError:
            continue
        name = os.path.basename(argv[0].decode(errors="replace"))
        if name not in ("conmon", "containerd-shim-runc-v2") or base.encode() not in b" ".join(argv):
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        out[f"{name}[{entry}]"] = rss
    return out


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def _prepare_ps(engine: Engine, ctx: Context) -> None:
    _prepare_busybox(engine, ctx)
    _remove_all(engine)
    for i in range(PS_CONTAINERS):
        engine.cli("create", *NET, "--name", f"ps{i}", "--label", f"n={i}", IMAGE, "true")


@workload("ps300", "s", f"docker ps -a with {PS_CONTAINERS} containers", prepare=_prepare_ps)
def ps300(engine: Engine, ctx: Context) -> float:
    return engine.timed("ps", "-a")


@workload("containers-json", "s", f"{LIST_REQUESTS} keep-alive GET /containers/json?all=1 with "
          f"{PS_CONTAINERS} containers", prepare=_prepare_ps)
def containers_json(engine: Engine, ctx: Context) -> float:
    conn = _UnixHTTPConnection(engine.daemon.socket)

    def get() -> bytes:
        conn.request("GET", "/v1.41/containers/json?all=1")  # dockerd 20.10 serves up to 1.41
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{engine.name}: GET /containers/json answered {resp.status}")
        return body

    get()
    t0 = time.perf_counter()
    for _ in range(LIST_REQUESTS):
        body = get()
    seconds = time.perf_counter() - t0
    conn.close()
    if len(json.loads(body)) != PS_CONTAINERS:
        raise RuntimeError(f"{engine.name}: listed {len(json.loads(body))} containers, not {PS_CONTAINERS}")
    return seconds
