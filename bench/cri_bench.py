"""python -m bench.cri_bench [workload ...]: dockyardd's CRI and Debian's containerd side by side.

The CRI counterpart of ``python -m bench``: the same alternation (the engine that goes first swaps every
round), medians and ratio dockyard / containerd, here over gRPC as a kubelet calls it. The reference is
bench/refcontainerd.py.

The pod workloads run the same sandbox image on both: busybox's files with a sleeping command (no pause
binary is at hand offline), served by the bench's registry as containerd's ``registry.k8s.io/pause:3.9``
(its mirror) and given to dockyardd with ``--sandbox-image``.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from .engines import make_daemon, process_tree, refdocker
from .refcontainerd import SANDBOX_IMAGE, RefContainerd
from .workloads import IDLE_SETTLE_S, Context, _big_image
from fixtures.busybox import _sha, build_busybox, image_config, rootfs_layer, write_docker_save
from registry import Registry  # tests/registry.py (engines.py puts tests/ on sys.path)

DOCKYARD = "dockyard"
CONTAINERD = "containerd"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PULL_REPO = "bench/big:latest"
STATUS_CALLS = 200
PAUSE_REPO = SANDBOX_IMAGE.split("/", 1)[1]  # pause:3.9, as the mirror of registry.k8s.io serves it
BUSYBOX_REPO = "bench/busybox:1"
MEMORY_PODS = 5


class Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class CriEngine:
    name: str
    server: Server
    socket: str
    rss: Callable[[], int]
    # RSS (KiB) of everything the engine runs for its pods and itself: the daemon, the shims, the
    # containers' processes
    pods_rss: Callable[[], int]
    channel: grpc.Channel | None = None

    def start(self) -> None:
        self.server.start()
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)
        # the first call loads dockyardd's gRPC (cri/listener.py): a kubelet makes it at its start
        self.runtime.Version(cri.VersionRequest())

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.server.stop()


class _Dockyardd:
    def __init__(self, base: Path, sandbox_image: str) -> None:
        self.daemon = make_daemon(base, extra_args=["--log-level", "info", "--sandbox-image", sandbox_image])

    def start(self) -> None:
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.teardown()


def dockyard_engine(base: Path, registry: Registry) -> CriEngine:
    base.mkdir(parents=True, exist_ok=True)
    server = _Dockyardd(base, f"{registry.host}/{PAUSE_REPO}")
    daemon = server.daemon

    def rss() -> int:
        assert daemon.proc is not None
        return sum(refdocker.rss_kb(pid) for pid, _ in process_tree(daemon.proc.pid))

    def pods_rss() -> int:
        """The daemon's tree, and for every running container its process and its conmon (its parent)."""
        pids = set()
        for c in daemon.api().containers(quiet=True):
            pid = daemon.api().inspect_container(c["Id"])["State"]["Pid"]
            pids |= {pid, _ppid(pid)}
        return rss() + sum(refdocker.rss_kb(pid) for pid in pids if pid)

    return CriEngine(DOCKYARD, server, str(Path(daemon.exec_root) / "cri.sock"), rss, pods_rss)


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def containerd_engine(base: Path, registry: Registry) -> CriEngine:
    ref = RefContainerd(base, registry=registry.host, plain_http=(registry.host,))

    def pods_rss() -> int:  # its mount namespace holds containerd, the shims and the containers
        return sum(refdocker.rss_kb(pid) for pid in ref.namespace_pids())

    return CriEngine(CONTAINERD, ref, ref.socket, ref.rss_kb, pods_rss)


FACTORIES = {DOCKYARD: dockyard_engine, CONTAINERD: containerd_engine}


# -- workloads ---------------------------------------------------------------------------
def pull(engine: CriEngine, ctx: Context, registry: Registry) -> float:
    """PullImage of the 200 MiB, 5-layer bench image (removed again, untimed)."""
    name = f"{registry.host}/{PULL_REPO}"
    t0 = time.perf_counter()
    engine.images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image=name)))
    seconds = time.perf_counter() - t0
    engine.images.RemoveImage(cri.RemoveImageRequest(image=cri.ImageSpec(image=name)))
    return seconds


def image_status(engine: CriEngine, ctx: Context, registry: Registry) -> float:
    """ImageStatus of a present image, the kubelet's call before every container start: ms per call."""
    name = f"{registry.host}/{PULL_REPO}"
    if not engine.images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image=name))).HasField("image"):
        engine.images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image=name)))
    t0 = time.perf_counter()
    for _ in range(STATUS_CALLS):
        engine.images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image=name)))
    return (time.perf_counter() - t0) / STATUS_CALLS * 1000


def idle_rss(engine: CriEngine, ctx: Context, registry: Registry) -> float:
    """Resident memory once a client has called (gRPC loaded), settled: dockyardd's tree, containerd's."""
    engine.images.ListImages(cri.ListImagesRequest())
    time.sleep(IDLE_SETTLE_S)
    return engine.rss() / 1024


def _pod(name: str, pid: int = cri.CONTAINER) -> cri.PodSandboxConfig:
    # the namespace options a kubelet sends for a hostNetwork pod: its own IPC, PIDs per container
    # (the kubelet asks for pid POD only with shareProcessNamespace)
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, namespace="bench", uid=f"uid-{name}"),
        linux=cri.LinuxPodSandboxConfig(security_context=cri.LinuxSandboxSecurityContext(
            namespace_options=cri.NamespaceOption(network=cri.NODE, pid=pid, ipc=cri.POD))))


def _run_pod(engine: CriEngine, registry: Registry, name: str, pid: int = cri.CONTAINER) -> str:
    """RunPodSandbox (host network) + CreateContainer + StartContainer of busybox sleeping."""
    config = _pod(name, pid)
    pod = engine.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=config)).pod_sandbox_id
    container = cri.ContainerConfig(metadata=cri.ContainerMetadata(name="sleeper"),
                                    image=cri.ImageSpec(image=f"{registry.host}/{BUSYBOX_REPO}"),
                                    command=["sleep", "100000"])
    cid = engine.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod, config=container,
                                                                    sandbox_config=config)).container_id
    engine.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
    return pod


def _remove_pod(engine: CriEngine, pod: str) -> None:
    engine.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod))
    engine.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod))


def _pull_pod_images(engine: CriEngine, registry: Registry) -> None:
    engine.images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image=f"{registry.host}/{BUSYBOX_REPO}")))
    # the sandbox image as each engine names it, pulled before the clock starts (a node has it)
    sandbox = SANDBOX_IMAGE if engine.name == CONTAINERD else f"{registry.host}/{PAUSE_REPO}"
    engine.images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image=sandbox)))


def pod_start(engine: CriEngine, ctx: Context, registry: Registry) -> float:
    """A host-network pod with one busybox container, up: RunPodSandbox + CreateContainer + StartContainer."""
    _pull_pod_images(engine, registry)
    t0 = time.perf_counter()
    pod = _run_pod(engine, registry, f"start-{time.monotonic_ns()}")
    seconds = time.perf_counter() - t0
    _remove_pod(engine, pod)
    return seconds


def pod_start_shared_pid(engine: CriEngine, ctx: Context, registry: Registry) -> float:
    """The same pod sharing one PID namespace (``shareProcessNamespace``): dockyard runs a pause container
    for it too."""
    _pull_pod_images(engine, registry)
    t0 = time.perf_counter()
    pod = _run_pod(engine, registry, f"pidstart-{time.monotonic_ns()}", pid=cri.POD)
    seconds = time.perf_counter() - t0
    _remove_pod(engine, pod)
    return seconds


def pod_memory(engine: CriEngine, ctx: Context, registry: Registry) -> float:
    """Memory per running pod (sandbox + one container): the growth of the daemon, shims and containers'
    resident memory over MEMORY_PODS pods, divided by their number."""
    _pull_pod_images(engine, registry)
    time.sleep(IDLE_SETTLE_S)
    before = engine.pods_rss()
    pods = [_run_pod(engine, registry, f"mem-{i}-{time.monotonic_ns()}") for i in range(MEMORY_PODS)]
    time.sleep(IDLE_SETTLE_S)
    after = engine.pods_rss()
    for pod in pods:
        _remove_pod(engine, pod)
    return (after - before) / MEMORY_PODS / 1024


WORKLOADS: dict[str, tuple[str, Callable[[CriEngine, Context, Registry], float]]] = {
    "cri-pull": ("s", pull), "cri-image-status": ("ms", image_status), "cri-idle-rss": ("MiB", idle_rss),
    "cri-pod-start": ("s", pod_start), "cri-pod-start-shared-pid": ("s", pod_start_shared_pid),
    "cri-pod-memory": ("MiB", pod_memory)}


def _push_pod_images(ctx: Context, registry: Registry) -> None:
    layer = rootfs_layer()
    pause, _ = ctx.artifact("pause.tar", lambda p: write_docker_save(
        str(p), [layer], ["bench/pause:1"], config=image_config([_sha(layer)], cmd=["sleep", "2147483647"])))
    busybox, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    registry.skopeo_copy(f"docker-archive:{pause}", PAUSE_REPO)
    registry.skopeo_copy(f"docker-archive:{busybox}", BUSYBOX_REPO)


def run(names: list[str], engines: list[str], rounds: int, warmup: int, workdir: Path) -> dict:
    ctx = Context(workdir)
    tar, _ = _big_image(ctx)
    registry = Registry(workdir / "registry").start()
    atexit.register(registry.stop)
    registry.skopeo_copy(f"docker-archive:{tar}", PULL_REPO)
    _push_pod_images(ctx, registry)
    results: dict[str, dict] = {}
    for wl in names:
        unit, measure = WORKLOADS[wl]
        samples: dict[str, list[float]] = {e: [] for e in engines}
        running = {e: FACTORIES[e](workdir / f"{wl}-{e}", registry) for e in engines}
        try:
            for eng in running.values():
                eng.start()
            for rnd in range(warmup + rounds):
                for e in engines if rnd % 2 == 0 else engines[::-1]:
                    value = measure(running[e], ctx, registry)
                    if rnd >= warmup:
                        samples[e].append(value)
                    print(f"  {wl:16} {'warmup' if rnd < warmup else f'round {rnd - warmup + 1}':8} {e:10} "
                          f"{value:10.3f} {unit}", flush=True)
        finally:
            for eng in running.values():
                eng.stop()
        out: dict = {"unit": unit, "engines": {e: {"samples": v, "median": statistics.median(v), "min": min(v),
                                                    "max": max(v)} for e, v in samples.items()}}
        if DOCKYARD in samples and CONTAINERD in samples:
            out["ratio"] = out["engines"][DOCKYARD]["median"] / out["engines"][CONTAINERD]["median"]
        results[wl] = out
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cri_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", metavar="workload", help=f"default all: {', '.join(WORKLOADS)}")
    p.add_argument("-n", "--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--engines", default=f"{DOCKYARD},{CONTAINERD}")
    p.add_argument("-o", "--output", help="results file (default bench/results/cri-<timestamp>.json)")
    args = p.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown or not engines or any(e not in FACTORIES for e in engines) or args.rounds < 1:
        p.error(f"workloads from {', '.join(WORKLOADS)}; engines from {', '.join(FACTORIES)}; rounds >= 1")
    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-cri-bench-", dir="/tmp"))
    try:
        results = run(args.workloads or list(WORKLOADS), engines, args.rounds, args.warmup, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'workload':16} {'unit':4} {'dockyard':>10} {'containerd':>10} {'ratio':>7}")
    for name, r in results.items():
        cells = [f"{r['engines'][e]['median']:10.3f}" if e in r["engines"] else f"{'-':>10}"
                 for e in (DOCKYARD, CONTAINERD)]
        ratio = f"{r['ratio']:7.2f}" if "ratio" in r else f"{'-':>7}"
        print(f"{name:16} {r['unit']:4} {cells[0]} {cells[1]} {ratio}")
    out = Path(args.output) if args.output else RESULTS_DIR / f"cri-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started": started.isoformat(), "rounds": args.rounds, "engines": engines,
                               "workloads": results}, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
