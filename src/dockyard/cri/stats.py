"""Container and pod stats in the CRI's terms, from the engine's stats samples (``docker stats``'s)."""

from __future__ import annotations

import time
from typing import Any

from cri_api.v1 import api_pb2 as cri


def working_set(memory: dict[str, Any]) -> int:
    """The kubelet's working set: usage less the inactive file cache (cgroup v2 or v1 names)."""
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    inactive = int(detail.get("inactive_file", detail.get("total_inactive_file", 0)) or 0)
    return max(0, usage - inactive)


def cpu_memory(sample: dict[str, Any], now: int) -> tuple[cri.CpuUsage, cri.MemoryUsage]:
    cpu = cri.CpuUsage(timestamp=now, usage_core_nano_seconds=cri.UInt64Value(
        value=int(((sample.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)))
    mem = sample.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    memory = cri.MemoryUsage(
        timestamp=now, working_set_bytes=cri.UInt64Value(value=working_set(mem)),
        usage_bytes=cri.UInt64Value(value=int(mem.get("usage") or 0)),
        rss_bytes=cri.UInt64Value(value=int(detail.get("anon", detail.get("rss", 0)) or 0)),
        page_faults=cri.UInt64Value(value=int(detail.get("pgfault", 0) or 0)),
        major_page_faults=cri.UInt64Value(value=int(detail.get("pgmajfault", 0) or 0)))
    if mem.get("limit"):
        memory.available_bytes.value = max(0, int(mem["limit"]) - working_set(mem))
    return cpu, memory


def container_stats(attributes: cri.ContainerAttributes, sample: dict[str, Any], rw_bytes: int,
                    mountpoint: str) -> cri.ContainerStats:
    now = time.time_ns()
    cpu, memory = cpu_memory(sample, now)
    layer = cri.FilesystemUsage(timestamp=now, fs_id=cri.FilesystemIdentifier(mountpoint=mountpoint),
                                used_bytes=cri.UInt64Value(value=rw_bytes))
    return cri.ContainerStats(attributes=attributes, cpu=cpu, memory=memory, writable_layer=layer)


def network(sample: dict[str, Any], now: int) -> cri.NetworkUsage:
    ifaces = [cri.NetworkInterfaceUsage(name=name, rx_bytes=cri.UInt64Value(value=int(n.get("rx_bytes", 0))),
                                        rx_errors=cri.UInt64Value(value=int(n.get("rx_errors", 0))),
                                        tx_bytes=cri.UInt64Value(value=int(n.get("tx_bytes", 0))),
                                        tx_errors=cri.UInt64Value(value=int(n.get("tx_errors", 0))))
              for name, n in sorted((sample.get("networks") or {}).items())]
    default = next((i for i in ifaces if i.name == "eth0"), ifaces[0] if ifaces else None)
    usage = cri.NetworkUsage(timestamp=now, interfaces=[i for i in ifaces if i is not default])
    if default is not None:
        usage.default_interface.CopyFrom(default)
    return usage


def pod_stats(attributes: cri.PodSandboxAttributes, own: dict[str, Any],
              containers: list[cri.ContainerStats]) -> cri.PodSandboxStats:
    """The pod's figures: its containers' sums and ``own``, a sample of the pod's pause container if
    it has one (the pod cgroup is the engine's per-container one, so the sum stands for it); the
    network from ``own``'s ``networks``, read in the pod's namespace."""
    now = time.time_ns()
    cpu, memory = cpu_memory(own, now)
    for c in containers:
        cpu.usage_core_nano_seconds.value += c.cpu.usage_core_nano_seconds.value
        memory.working_set_bytes.value += c.memory.working_set_bytes.value
        memory.usage_bytes.value += c.memory.usage_bytes.value
        memory.rss_bytes.value += c.memory.rss_bytes.value
    procs = int((own.get("pids_stats") or {}).get("current") or 0)
    linux = cri.LinuxPodSandboxStats(cpu=cpu, memory=memory, network=network(own, now), containers=containers,
                                     process=cri.ProcessUsage(timestamp=now,
                                                              process_count=cri.UInt64Value(value=procs)))
    return cri.PodSandboxStats(attributes=attributes, linux=linux)
