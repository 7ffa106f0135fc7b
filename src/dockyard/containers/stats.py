"""docker stats: a container's cgroup and network counters in dockerd's JSON shape.

The cgroup is found from the init process (``/proc/<pid>/cgroup``) and read
with the v1 reader (one hierarchy per controller) or the v2 reader (one
unified directory), whichever the host mounts. Network counters come from
``/proc/<pid>/net/dev``, which shows the container's network namespace.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..util import timefmt
from ..util.host import read_text
from .state import PAUSED, RUNNING

CGROUP_ROOT = "/sys/fs/cgroup"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FRESH = 10.0  # a previous sample this recent serves as precpu, so a one-shot answer needs no wait
WINDOW = 0.5  # otherwise: the interval between the two samples


def _int(path: str, default: int = 0) -> int:
    text = read_text(path).strip()
    try:
        return int(text)
    except ValueError:
        return default


def _kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in read_text(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def machine_memory() -> int:
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def system_cpu_usage() -> int:
    """All CPUs' time since boot in nanoseconds, as dockerd's getSystemCPUUsage."""
    for line in read_text("/proc/stat").splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(x) for x in line.split()[1:8])
            return ticks * 1_000_000_000 // CLOCK_TICKS
    return 0


def cgroup_paths(pid: int) -> dict[str, str]:
    """Controller → the process's cgroup path (v2: key "")."""
    out: dict[str, str] = {}
    for line in read_text(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(","):
            out[name] = path
    return out


def read_v1(paths: dict[str, str], root: str = CGROUP_ROOT) -> dict[str, Any]:
    def d(controller: str) -> str:
        return os.path.join(root, controller, paths.get(controller, "/").lstrip("/"))

    cpuacct, memory = d("cpuacct"), d("memory")
    percpu = [int(x) for x in read_text(os.path.join(cpuacct, "cpuacct.usage_percpu")).split()]
    ticks = _kv(os.path.join(cpuacct, "cpuacct.stat"))
    tick_ns = 1_000_000_000 // CLOCK_TICKS
    throttle = _kv(os.path.join(d("cpu"), "cpu.stat"))
    cpu = {"cpu_usage": {"total_usage": _int(os.path.join(cpuacct, "cpuacct.usage")), "percpu_usage": percpu,
                         "usage_in_kernelmode": ticks.get("system", 0) * tick_ns,
                         "usage_in_usermode": ticks.get("user", 0) * tick_ns},
           "online_cpus": len(percpu) or os.cpu_count() or 1,
           "throttling_data": {"periods": throttle.get("nr_periods", 0),
                               "throttled_periods": throttle.get("nr_throttled", 0),
                               "throttled_time": throttle.get("throttled_time", 0)}}
    mem = {"usage": _int(os.path.join(memory, "memory.usage_in_bytes")),
           "max_usage": _int(os.path.join(memory, "memory.max_usage_in_bytes")),
           "stats": _kv(os.path.join(memory, "memory.stat")),
           "failcnt": _int(os.path.join(memory, "memory.failcnt")),
           "limit": _int(os.path.join(memory, "memory.limit_in_bytes"))}
    blkio: dict[str, Any] = {k: None for k in ("io_service_bytes_recursive", "io_serviced_recursive",
                                                "io_queue_recursive", "io_service_time_recursive",
                                                "io_wait_time_recursive", "io_merged_recursive",
                                                "io_time_recursive", "sectors_recursive")}
    for key, name in (("io_service_bytes_recursive", "blkio.throttle.io_service_bytes"),
                      ("io_serviced_recursive", "blkio.throttle.io_serviced")):
        entries = []
        for line in read_text(os.path.join(d("blkio"), name)).splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, minor = parts[0].split(":")
                entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
        blkio[key] = entries or None
    pids = {"current": _int(os.path.join(d("pids"), "pids.current"))}
    limit = read_text(os.path.join(d("pids"), "pids.max")).strip()
    if limit.isdigit():
        pids["limit"] = int(limit)
    return {"cpu": cpu, "memory": mem, "blkio": blkio, "pids": pids}


def read_v2(path: str, root: str = CGROUP_ROOT) -> dict[str, Any]:
    d = os.path.join(root, path.lstrip("/"))
    cpu_stat = _kv(os.path.join(d, "cpu.stat"))
    cpu = {"cpu_usage": {"total_usage": cpu_stat.get("usage_usec", 0) * 1000,
                         "usage_in_kernelmode": cpu_stat.get("system_usec", 0) * 1000,
                         "usage_in_usermode": cpu_stat.get("user_usec", 0) * 1000},
           "online_cpus": os.cpu_count() or 1,
           "throttling_data": {"periods": cpu_stat.get("nr_periods", 0),
                               "throttled_periods": cpu_stat.get("nr_throttled", 0),
                               "throttled_time": cpu_stat.get("throttled_usec", 0) * 1000}}
    limit_text = read_text(os.path.join(d, "memory.max")).strip()
    mem = {"usage": _int(os.path.join(d, "memory.current")), "stats": _kv(os.path.join(d, "memory.stat")),
           "limit": int(limit_text) if limit_text.isdigit() else 0}
    service: list[dict[str, Any]] = []
    for line in read_text(os.path.join(d, "io.stat")).splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            if key in fields:
                service.append({"major": major, "minor": minor, "op": op, "value": int(fields[key])})
    blkio: dict[str, Any] = {k: None for k in ("io_serviced_recursive", "io_queue_recursive",
                                                "io_service_time_recursive", "io_wait_time_recursive",
                                                "io_merged_recursive", "io_time_recursive", "sectors_recursive")}
    blkio["io_service_bytes_recursive"] = service or None
    pids = {"current": _int(os.path.join(d, "pids.current"))}
    plimit = read_text(os.path.join(d, "pids.max")).strip()
    if plimit.isdigit():
        pids["limit"] = int(plimit)
    return {"cpu": cpu, "memory": mem, "blkio": blkio, "pids": pids}


def networks(pid: int) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for line in read_text(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        v = rest.split()
        if name == "lo" or len(v) < 16:
            continue
        n = [int(x) for x in v]
        out[name] = {"rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                     "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11]}
    return out


class StatsService:
    def __init__(self, containers: Any) -> None:
        self.containers = containers
        self._memory = machine_memory()
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, dict[str, Any]]] = {}  # container → (monotonic, sample)
        containers.lifecycle.register(removed=self.forget)

    def sample(self, ref: str) -> dict[str, Any]:
        """One sample without precpu (dockerd's shape, zeros for a container that does not run)."""
        c = self.containers.get(ref)
        base: dict[str, Any] = {"name": c.name, "id": c.id, "read": timefmt.now_fixed(), "preread": timefmt.ZERO_TIME,
                                "num_procs": 0, "pids_stats": {}, "blkio_stats": {
                                    k: None for k in ("io_service_bytes_recursive", "io_serviced_recursive",
                                                      "io_queue_recursive", "io_service_time_recursive",
                                                      "io_wait_time_recursive", "io_merged_recursive",
                                                      "io_time_recursive", "sectors_recursive")},
                                "storage_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0,
                                                                                 "usage_in_kernelmode": 0,
                                                                                 "usage_in_usermode": 0},
                                                                   "throttling_data": {"periods": 0,
                                                                                       "throttled_periods": 0,
                                                                                       "throttled_time": 0}},
                                "memory_stats": {}}
        pid = c.state.pid
        if c.state.status not in (RUNNING, PAUSED) or not pid:
            return base
        paths = cgroup_paths(pid)
        raw = read_v2(paths.get("", "/")) if "" in paths and len(paths) == 1 else read_v1(paths)
        mem = raw["memory"]
        if self._memory and (not mem.get("limit") or mem["limit"] > self._memory):
            mem["limit"] = self._memory
        base.update(cpu_stats={**raw["cpu"], "system_cpu_usage": system_cpu_usage()}, memory_stats=mem,
                    blkio_stats=raw["blkio"], pids_stats=raw["pids"])
        nets = networks(pid)
        if nets:
            base["networks"] = nets
        return base

    def stats(self, ref: str, one_shot: bool = False) -> dict[str, Any]:
        """A sample with precpu filled from a recent one (or one taken ``WINDOW`` earlier)."""
        c = self.containers.get(ref)
        if one_shot:
            out = self.sample(c.id)
            out["precpu_stats"] = _empty_cpu()
            return out
        with self._lock:
            last = self._last.get(c.id)
        if last is None or time.monotonic() - last[0] > FRESH or time.monotonic() - last[0] < 0.1:
            first = self.sample(c.id)
            time.sleep(WINDOW)
            last = (time.monotonic(), first)
        return self.next(c.id, last[1])

    def next(self, ref: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        """A new sample whose pre* fields are ``previous`` (for streaming)."""
        out = self.sample(ref)
        if previous is not None:
            out["preread"] = previous["read"]
            out["precpu_stats"] = previous["cpu_stats"]
        else:
            out["precpu_stats"] = _empty_cpu()
        with self._lock:
            self._last[out["id"]] = (time.monotonic(), {k: out[k] for k in ("read", "cpu_stats")})
        return out

    def forget(self, container_id: str) -> None:
        """The container is removed (the lifecycle's ``removed`` hook)."""
        with self._lock:
            self._last.pop(container_id, None)

    def count(self) -> int:
        """Containers with a sample kept (the engine's debug counts)."""
        with self._lock:
            return len(self._last)


def _empty_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
