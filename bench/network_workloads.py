"""Network workloads: `docker run` on the default bridge, and throughput through a published port.

Both need dockerd with a bridge of its own (``make_refdocker(bridge=True)``, refdocker0
10.213.0.1/24), which the shared bench harness does not start, so this module runs them:

    .venv/bin/python -m bench.network_workloads [-n ROUNDS]

Traffic goes only to 127.0.0.1 (the published port) and the engines' own bridges.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .engines import DOCKERD, DOCKYARD, Engine, dockyard_engine, refdocker
from .workloads import Context

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fixtures.busybox import build_busybox  # noqa: E402

GiB = 1 << 30
CHUNK = 1 << 20


def run_bridge(engine: Engine) -> float:
    """`docker run --rm busybox true` on the default bridge: network setup and teardown included."""
    return engine.timed("run", "--rm", "busybox", "true")


def port_throughput(engine: Engine, total: int = GiB) -> float:
    """MB/s of one TCP stream of ``total`` bytes into a container through 127.0.0.1:PORT."""
    cid = engine.cli("run", "-d", "-p", "127.0.0.1::5001", "busybox", "sh", "-c",
                     "nc -l -p 5001 > /dev/null").stdout_text.strip()
    try:
        port = int(engine.cli("port", cid, "5001/tcp").stdout_text.split(":")[-1])
        buf = b"\0" * CHUNK
        for _ in range(100):  # the listener may not be up yet
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{engine.name}: published port {port} never answered")
        with s:
            t0 = time.perf_counter()
            sent = 0
            while sent < total:
                s.sendall(buf)
                sent += len(buf)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)  # EOF once the container has read everything and closed
            seconds = time.perf_counter() - t0
        return total / seconds / 1e6
    finally:
        engine.cli("rm", "-f", cid, check=False)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--rounds", type=int, default=5)
    ap.add_argument("--mib", type=int, default=1024, help="bytes through the port, in MiB")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="benchnet-"))
    ctx = Context(work)
    tar, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engines = [dockyard_engine(work / DOCKYARD),
               Engine(DOCKERD, work / DOCKERD, refdocker.make_refdocker(work / DOCKERD, bridge=True))]
    results: dict[str, dict[str, list[float]]] = {"run-bridge (s)": {}, "port-throughput (MB/s)": {}}
    try:
        for e in engines:
            e.start()
            e.cli("load", "-i", str(tar))
            run_bridge(e)  # warm-up
        for r in range(args.rounds):
            for e in engines if r % 2 == 0 else engines[::-1]:
                results["run-bridge (s)"].setdefault(e.name, []).append(run_bridge(e))
                results["port-throughput (MB/s)"].setdefault(e.name, []).append(
                    port_throughput(e, args.mib << 20))
    finally:
        for e in engines:
            e.stop()
    for name, per in results.items():
        med = {k: statistics.median(v) for k, v in per.items()}
        spread = {k: f"{min(v):.3f}-{max(v):.3f}" for k, v in per.items()}
        ratio = med[DOCKYARD] / med[DOCKERD]
        print(f"{name:24} dockyard {med[DOCKYARD]:8.3f} [{spread[DOCKYARD]}]  dockerd {med[DOCKERD]:8.3f} "
              f"[{spread[DOCKERD]}]  ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
