"""python -m bench [workload ...]: dockyardd and the reference dockerd side by side.

Each workload runs against both engines, alternating A/B (and swapping who goes first
every round), then prints per-engine medians and the ratio dockyard / dockerd.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import engines, registry_workloads  # noqa: F401  (registers pull, push)
from .engines import DOCKERD, DOCKYARD, Engine, EngineFactory
from .workloads import WORKLOADS, Context, Sample, Workload
from . import tls_workloads  # noqa: F401  (registers tls-version, tls-keepalive)
from . import container_workloads  # noqa: F401  (registers run, run20, logs, shim-rss, ps300, containers-json)
from . import volume_workloads  # noqa: F401  (registers volume-run-10k, volume-write-1g)
from . import build_workloads  # noqa: F401  (registers build-10-nocache, build-10-cached, build-copy-200m)
from . import inside_workloads  # noqa: F401  (registers exec, cp-out, cp-in, stats20)

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _split(sample: Sample) -> tuple[float, dict]:
    return sample if isinstance(sample, tuple) else (sample, {})


class Runner:
    def __init__(self, factories: dict[str, EngineFactory], ctx: Context, rounds: int, warmup: int,
                 keep: bool) -> None:
        self.factories = factories
        self.ctx = ctx
        self.rounds = rounds
        self.warmup = warmup
        self.keep = keep
        self._n = 0

    def _new_engine(self, name: str) -> Engine:
        self._n += 1
        return self.factories[name](self.ctx.workdir / f"{name}-{self._n}")

    def _dispose(self, eng: Engine) -> None:
        eng.stop()
        if not self.keep:
            # a load workload leaves GBs in data roots; free them as soon as an engine is done
            shutil.rmtree(eng.base, ignore_errors=True)

    def _order(self, rnd: int) -> list[str]:
        names = list(self.factories)
        return names if rnd % 2 == 0 else names[::-1]

    def _sample(self, wl: Workload, name: str, running: dict[str, Engine]) -> tuple[float, dict]:
        if not wl.fresh_engine:
            return _split(wl.measure(running[name], self.ctx))
        eng = self._new_engine(name)
        try:
            eng.start()
            if wl.prepare:
                wl.prepare(eng, self.ctx)
            return _split(wl.measure(eng, self.ctx))
        finally:
            self._dispose(eng)

    def run(self, wl: Workload) -> dict:
        samples: dict[str, list[float]] = {n: [] for n in self.factories}
        details: dict[str, list[dict]] = {n: [] for n in self.factories}
        running: dict[str, Engine] = {}
        try:
            if not wl.fresh_engine:
                for name in self.factories:
                    running[name] = eng = self._new_engine(name)
                    eng.start()
                    if wl.prepare:
                        wl.prepare(eng, self.ctx)
            for rnd in range(self.warmup + self.rounds):
                for name in self._order(rnd):
                    value, extra = self._sample(wl, name, running)
                    if rnd >= self.warmup:
                        samples[name].append(value)
                        details[name].append(extra)
                    tag = "warmup" if rnd < self.warmup else f"round {rnd - self.warmup + 1}"
                    print(f"  {wl.name:10} {tag:8} {name:9} {value:10.3f} {wl.unit}", flush=True)
        finally:
            for eng in running.values():
                self._dispose(eng)
        return summarize(wl, samples, details)


def summarize(wl: Workload, samples: dict[str, list[float]], details: dict[str, list[dict]]) -> dict:
    out: dict = {"unit": wl.unit, "description": wl.description, "engines": {}}
    for name, values in samples.items():
        out["engines"][name] = {"samples": values, "median": statistics.median(values),
                                "min": min(values), "max": max(values)}
        if any(details[name]):
            out["engines"][name]["details"] = details[name]
    if DOCKYARD in samples and DOCKERD in samples:
        out["ratio"] = out["engines"][DOCKYARD]["median"] / out["engines"][DOCKERD]["median"]
    return out


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return ""


def machine() -> dict:
    root = Path(__file__).resolve().parent.parent
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "dockyard_commit": _version(["git", "-C", str(root), "rev-parse", "--short", "HEAD"]),
            "dockerd": _version([engines.refdocker.DOCKERD or "dockerd", "--version"]) if engines.refdocker.available() else None,
            "docker_cli": _version([engines.refdocker.DOCKER, "--version"])}


def print_table(results: dict) -> None:
    print()
    print(f"{'workload':10} {'unit':4} {'dockyard':>10} {'dockerd':>10} {'dockyard/dockerd':>17}   range dockyard | dockerd")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:10} FAILED: {r['error']}")
            continue
        e = r["engines"]
        cell = {n: f"{e[n]['median']:10.3f}" if n in e else f"{'-':>10}" for n in (DOCKYARD, DOCKERD)}
        ratio = f"{r['ratio']:17.2f}" if "ratio" in r else f"{'-':>17}"
        ranges = " | ".join(f"{e[n]['min']:.3f}-{e[n]['max']:.3f}" for n in (DOCKYARD, DOCKERD) if n in e)
        print(f"{name:10} {r['unit']:4} {cell[DOCKYARD]} {cell[DOCKERD]} {ratio}   {ranges}")
    print("medians; ratio = dockyard / dockerd (for times and RSS alike, lower is better for dockyard)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", metavar="workload",
                   help=f"workloads to run (default: all): {', '.join(WORKLOADS)}")
    p.add_argument("-n", "--rounds", type=int, default=5, help="measured rounds per engine (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first (default 1)")
    p.add_argument("--engines", default=f"{DOCKYARD},{DOCKERD}",
                   help=f"comma-separated, from {DOCKYARD},{DOCKERD} (default both)")
    p.add_argument("-o", "--output", help="results file (default bench/results/<timestamp>.json)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (daemon logs, data roots)")
    p.add_argument("-l", "--list", action="store_true", help="list the workloads and exit")
    args = p.parse_args(argv)

    if args.list:
        for wl in WORKLOADS.values():
            print(f"{wl.name:10} {wl.unit:4} {wl.description}")
        return 0
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    if not names or any(n not in (DOCKYARD, DOCKERD) for n in names):
        p.error(f"--engines takes {DOCKYARD} and/or {DOCKERD}")
    if DOCKERD in names and not engines.refdocker.available():
        print("NOTE: dockerd is not installed (apt-get install docker.io): running dockyard only, no ratios.",
              file=sys.stderr)
        names.remove(DOCKERD)
        if not names:
            return 1
    if os.geteuid() != 0:
        print("the daemons need root", file=sys.stderr)
        return 1

    selected = [WORKLOADS[w] for w in (args.workloads or list(WORKLOADS))]
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir="/tmp"))
    runner = Runner(engines.factories(names), Context(workdir), args.rounds, args.warmup, args.keep)
    started = datetime.datetime.now(datetime.timezone.utc)
    results: dict[str, dict] = {}
    try:
        for wl in selected:
            print(f"{wl.name}: {wl.description}", flush=True)
            t0 = time.monotonic()
            # other work on the machine skews times; the file says how busy it was
            load_before = os.getloadavg()
            try:
                results[wl.name] = runner.run(wl)
            except Exception as exc:  # one broken workload must not hide the others' figures
                traceback.print_exc()
                results[wl.name] = {"unit": wl.unit, "description": wl.description,
                                    "error": " ".join(str(exc).split())[:300] or repr(exc)}
            results[wl.name]["elapsed_s"] = round(time.monotonic() - t0, 1)
            results[wl.name]["loadavg_1m"] = {"before": load_before[0], "after": os.getloadavg()[0]}
    finally:
        if args.keep:
            print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(results)
    if DOCKERD not in names:
        print("dockerd was not run: no reference figures, no ratios")
    out = Path(args.output) if args.output else RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started": started.isoformat(), "rounds": args.rounds, "warmup": args.warmup,
                               "engines": names, "machine": machine(), "workloads": results}, indent=2) + "\n")
    print(f"results: {out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
