"""Watching and retuning containers: stats and update (docker's ``cli/command/container``).

``stats`` reads one stats stream per container on a thread of its own, as
docker's collectors do, and redraws the table every half second; the CPU and
memory figures are computed from the raw samples exactly as docker's CLI
computes them (``calculateCPUPercentUnix``, ``calculateMemUsageUnixNoCache``).
Without container names it follows container events, adding containers as
they start (or are created, with ``-a``) and dropping those that die.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import docker

from . import config
from .command import Arity, Cli, CliError, CommandTree, add_bool
from .common import bytes_flag, int_flag, invalid_flag
from .connection import api_message, raw_post
from .output import Context, Format, bytes_size, human_size, truncate_id, write_formatted

STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
REDRAW_SECONDS = 0.5
SAMPLE_TIMEOUT = 2.0  # docker zeroes a container's row when no sample came for this long


# ---------------------------------------------------------------- docker's arithmetic

def cpu_percent_unix(pre: dict[str, Any], cur: dict[str, Any]) -> float:
    """calculateCPUPercentUnix: the container's share of the host's CPU time between two samples."""
    cpu_delta = float((cur.get("cpu_usage") or {}).get("total_usage") or 0) - \
        float((pre.get("cpu_usage") or {}).get("total_usage") or 0)
    system_delta = float(cur.get("system_cpu_usage") or 0) - float(pre.get("system_cpu_usage") or 0)
    online = float(cur.get("online_cpus") or 0)
    if online == 0.0:
        online = float(len((cur.get("cpu_usage") or {}).get("percpu_usage") or []))
    if system_delta > 0.0 and cpu_delta > 0.0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def mem_usage_no_cache(mem: dict[str, Any]) -> float:
    """calculateMemUsageUnixNoCache: usage less inactive file pages (cgroup v1 or v2 name)."""
    usage = int(mem.get("usage") or 0)
    stats = mem.get("stats") or {}
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
        return float(usage - stats["total_inactive_file"])
    inactive = int(stats.get("inactive_file") or 0)
    if inactive < usage:
        return float(usage - inactive)
    return float(usage)


def mem_percent(limit: float, used: float) -> float:
    return used / limit * 100.0 if limit != 0 else 0.0


def block_io(blkio: dict[str, Any]) -> tuple[int, int]:
    read = write = 0
    for entry in (blkio or {}).get("io_service_bytes_recursive") or []:
        op = entry.get("op") or ""
        if op[:1] in ("r", "R"):
            read += int(entry.get("value") or 0)
        elif op[:1] in ("w", "W"):
            write += int(entry.get("value") or 0)
    return read, write


def network_io(networks: dict[str, Any] | None) -> tuple[float, float]:
    rx = sum(float(n.get("rx_bytes") or 0) for n in (networks or {}).values())
    tx = sum(float(n.get("tx_bytes") or 0) for n in (networks or {}).values())
    return rx, tx


@dataclass
class StatsEntry:
    container: str
    name: str = ""
    id: str = ""
    cpu: float = 0.0
    memory: float = 0.0
    memory_limit: float = 0.0
    memory_percent: float = 0.0
    rx: float = 0.0
    tx: float = 0.0
    block_read: float = 0.0
    block_write: float = 0.0
    pids: int = 0
    invalid: bool = False


def entry_from_sample(container: str, v: dict[str, Any]) -> StatsEntry:
    """One raw stats sample as docker's StatsEntry (Linux daemon)."""
    mem = v.get("memory_stats") or {}
    used = mem_usage_no_cache(mem)
    limit = float(mem.get("limit") or 0)
    rx, tx = network_io(v.get("networks"))
    read, write = block_io(v.get("blkio_stats") or {})
    return StatsEntry(container=container, name=v.get("name") or "", id=v.get("id") or "",
                      cpu=cpu_percent_unix(v.get("precpu_stats") or {}, v.get("cpu_stats") or {}),
                      memory=used, memory_limit=limit, memory_percent=mem_percent(limit, used),
                      rx=rx, tx=tx, block_read=float(read), block_write=float(write),
                      pids=int((v.get("pids_stats") or {}).get("current") or 0))


def _percentage(value: float) -> str:
    return f"{value:.2f}%"


class StatsContext(Context):
    """One row of ``docker stats`` (docker's ``statsContext``)."""

    HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
               "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
               "PIDs": "PIDS"}
    type_name = "*container.statsContext"

    def __init__(self, s: StatsEntry | None = None, trunc: bool = True) -> None:
        self.s = s or StatsEntry("")
        self.trunc = trunc

    def Container(self) -> str:
        return self.s.container

    def Name(self) -> str:
        return self.s.name[1:] if len(self.s.name) > 1 else "--"

    def ID(self) -> str:
        return truncate_id(self.s.id) if self.trunc else self.s.id

    def CPUPerc(self) -> str:
        return "--" if self.s.invalid else _percentage(self.s.cpu)

    def MemUsage(self) -> str:
        return "-- / --" if self.s.invalid else f"{bytes_size(self.s.memory)} / {bytes_size(self.s.memory_limit)}"

    def MemPerc(self) -> str:
        return "--" if self.s.invalid else _percentage(self.s.memory_percent)

    def NetIO(self) -> str:
        return "--" if self.s.invalid else f"{human_size(self.s.rx, 3)} / {human_size(self.s.tx, 3)}"

    def BlockIO(self) -> str:
        return "--" if self.s.invalid else f"{human_size(self.s.block_read, 3)} / {human_size(self.s.block_write, 3)}"

    def PIDs(self) -> str:
        return "--" if self.s.invalid else str(self.s.pids)


# ---------------------------------------------------------------- collection

@dataclass
class _Tracked:
    """A container being watched: its latest figures, error, and whether its first answer came."""

    entry: StatsEntry
    error: str = ""
    first: threading.Event = field(default_factory=threading.Event)
    last_sample: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)


class Collector:
    def __init__(self, api: docker.APIClient, stream: bool) -> None:
        self.api = api
        self.stream = stream
        self.lock = threading.Lock()
        self.tracked: list[_Tracked] = []

    def add(self, container: str) -> None:
        with self.lock:
            if any(t.entry.container == container for t in self.tracked):
                return
            t = _Tracked(StatsEntry(container))
            self.tracked.append(t)
        threading.Thread(target=self._collect, args=(t,), daemon=True).start()

    def remove(self, container: str) -> None:
        with self.lock:
            for t in self.tracked:
                if t.entry.container == container:
                    t.stop.set()
            self.tracked = [t for t in self.tracked if t.entry.container != container]

    def _collect(self, t: _Tracked) -> None:
        try:
            if self.stream:
                for sample in self.api.stats(t.entry.container, decode=True, stream=True):
                    if t.stop.is_set():
                        return
                    self._record(t, sample)
                # the daemon ended the stream (the container is gone): docker marks the row invalid at once
                with self.lock:
                    t.entry.invalid = True
            else:
                self._record(t, self.api.stats(t.entry.container, stream=False))
        except docker.errors.APIError as e:
            t.error = f"Error response from daemon: {api_message(e)}"
            t.entry.invalid = True
        except Exception as e:  # the stream broke (daemon gone): the row goes invalid, as docker's does
            t.error = str(e)
            t.entry.invalid = True
        finally:
            t.first.set()

    def _record(self, t: _Tracked, sample: dict[str, Any]) -> None:
        with self.lock:
            t.entry = entry_from_sample(t.entry.container, sample)
            t.last_sample = time.monotonic()
            t.error = ""
        t.first.set()

    def wait_first(self) -> None:
        """Until every container has answered once, or its time to answer ran out (its row then reads ``--``)."""
        deadline = time.monotonic() + SAMPLE_TIMEOUT
        for t in list(self.tracked):
            if not t.first.wait(max(0.0, deadline - time.monotonic())):
                t.entry = StatsEntry(t.entry.container, t.entry.name, t.entry.id, invalid=True)
                t.error = "timeout waiting for stats"

    def snapshot(self) -> list[StatsEntry]:
        now = time.monotonic()
        with self.lock:
            for t in self.tracked:
                if self.stream and not t.error and now - t.last_sample > SAMPLE_TIMEOUT:
                    t.entry = StatsEntry(t.entry.container, t.entry.name, t.entry.id, invalid=True)
            return [t.entry for t in self.tracked]


def _follow_events(cli: Cli, collector: Collector, show_all: bool, started: threading.Event) -> None:
    """docker's event handler for ``stats`` without names: start (and create, with -a) adds; die drops."""
    try:
        events = cli.client.api.events(filters={"type": ["container"]}, decode=True)
    finally:
        started.set()
    for ev in events:
        action = ev.get("Action") or ev.get("status") or ""
        cid = (ev.get("id") or (ev.get("Actor") or {}).get("ID") or "")[:12]
        if action == "start" or (action == "create" and show_all):
            collector.add(cid)
        elif action == "die" and not show_all:
            collector.remove(cid)


def redraw(table: str) -> str:
    """What docker 28 writes for each streaming tick, byte for byte.

    Its buffer gets cursor-home and the table, then each line of that same buffer again with
    an erase-to-end-of-line, then erase-below: on a terminal the second copy overwrites the
    first in place, so the screen is redrawn without the flicker of a full clear.
    """
    first = "\033[H" + table
    return first + "".join(line + " \033[K\n" for line in first.split("\n")) + "\033[J"


def cmd_stats(cli: Cli, ns: argparse.Namespace) -> int:
    stream = not ns.no_stream
    collector = Collector(cli.client.api, stream)
    show_all = not ns.args
    if show_all:
        if stream:
            started = threading.Event()
            threading.Thread(target=_follow_events, args=(cli, collector, ns.all, started), daemon=True).start()
            started.wait(5)
        for c in cli.client.api.containers(all=ns.all):
            collector.add(c["Id"][:12])
        collector.wait_first()
    else:
        for name in ns.args:
            collector.add(name)
        collector.wait_first()
        errors = [t.error for t in collector.tracked if t.error]
        if errors:
            raise CliError("\n".join(errors))
    source = ns.format or config.default_format("statsFormat") or "table"
    fmt = Format(STATS_TABLE if source == "table" else source)
    while True:
        rows = [StatsContext(e, trunc=not ns.no_trunc) for e in collector.snapshot()]
        buf = io.StringIO()
        write_formatted(buf, fmt, rows, StatsContext())
        text = buf.getvalue()
        if stream:
            text = redraw(text)
        cli.out.write(text)
        cli.out.flush()
        if not stream or (not collector.tracked and not show_all):
            return 0
        time.sleep(REDRAW_SECONDS)


# ---------------------------------------------------------------- update

def _nano_cpus(parser: argparse.ArgumentParser, value: str) -> int:
    try:
        return int(round(float(value) * 1e9))
    except ValueError:
        raise invalid_flag(parser, value, "--cpus", f"failed to parse {value} as a rational number") from None


def cmd_update(cli: Cli, ns: argparse.Namespace) -> int:
    p = ns.command_parser
    given = [k for k in UPDATE_FLAGS if getattr(ns, k) is not None]
    if not given:
        raise CliError("you must provide one or more flags when using this command")
    blkio = int_flag(p, ns.blkio_weight, "--blkio-weight") or 0
    if not 0 <= blkio <= 65535:
        raise invalid_flag(p, ns.blkio_weight, "--blkio-weight", f'strconv.ParseUint: parsing "{ns.blkio_weight}": '
                       "value out of range")
    pids = int_flag(p, ns.pids_limit, "--pids-limit") or 0
    resources: dict[str, Any] = {
        "CpuShares": int_flag(p, ns.cpu_shares, "-c, --cpu-shares") or 0,
        "Memory": bytes_flag(p, ns.memory, "-m, --memory") or 0,
        "NanoCpus": _nano_cpus(p, ns.cpus) if ns.cpus is not None else 0,
        "BlkioWeight": blkio,
        "CpuPeriod": int_flag(p, ns.cpu_period, "--cpu-period") or 0,
        "CpuQuota": int_flag(p, ns.cpu_quota, "--cpu-quota") or 0,
        "CpuRealtimePeriod": int_flag(p, ns.cpu_rt_period, "--cpu-rt-period") or 0,
        "CpuRealtimeRuntime": int_flag(p, ns.cpu_rt_runtime, "--cpu-rt-runtime") or 0,
        "CpusetCpus": ns.cpuset_cpus or "",
        "CpusetMems": ns.cpuset_mems or "",
        "MemoryReservation": bytes_flag(p, ns.memory_reservation, "--memory-reservation") or 0,
        "MemorySwap": bytes_flag(p, ns.memory_swap, "--memory-swap", allow_minus_one=True) or 0,
        "PidsLimit": pids or None,  # docker sends a pointer: absent when 0
    }
    policy: dict[str, Any] = {"Name": "", "MaximumRetryCount": 0}
    if ns.restart:
        # docker 28's update leaves the policy's name to the daemon to judge; only the count is parsed here
        name, _, count = ns.restart.partition(":")
        policy["Name"] = name
        if count:
            try:
                policy["MaximumRetryCount"] = int(count, 10)
            except ValueError:
                raise CliError("invalid restart policy format: maximum retry count must be an integer") from None
    body = json.dumps({**resources, "RestartPolicy": policy}).encode()
    warnings: list[str] = []
    problems: list[str] = []
    for name in ns.args:
        try:
            res = raw_post(cli.client, f"/containers/{name}/update", data=body,
                           headers={"Content-Type": "application/json"}).json()
        except docker.errors.APIError as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
            continue
        cli.out.write(name + "\n")
        warnings.extend((res or {}).get("Warnings") or [])
    if warnings:
        cli.out.write("\n".join(warnings) + "\n")
    if problems:
        cli.err.write("\n".join(problems) + "\n")
        return 1
    return 0


UPDATE_FLAGS = ("blkio_weight", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
                "cpuset_cpus", "cpuset_mems", "memory", "memory_reservation", "memory_swap", "pids_limit", "restart")


# ---------------------------------------------------------------- registration

def _stats_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all", help="Show all containers (default shows just running)")
    p.add_argument("--format", default="", metavar="string", help="Format output using a custom template")
    add_bool(p, "--no-stream", help="Disable streaming stats and only pull the first result")
    add_bool(p, "--no-trunc", help="Do not truncate output")


def _update_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blkio-weight", metavar="uint16",
                   help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
    p.add_argument("--cpu-period", metavar="int", help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", metavar="int", help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("--cpu-rt-period", metavar="int", help="Limit the CPU real-time period in microseconds")
    p.add_argument("--cpu-rt-runtime", metavar="int", help="Limit the CPU real-time runtime in microseconds")
    p.add_argument("-c", "--cpu-shares", metavar="int", help="CPU shares (relative weight)")
    p.add_argument("--cpus", metavar="decimal", help="Number of CPUs")
    p.add_argument("--cpuset-cpus", metavar="string", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--cpuset-mems", metavar="string", help="MEMs in which to allow execution (0-3, 0,1)")
    p.add_argument("-m", "--memory", metavar="bytes", help="Memory limit")
    p.add_argument("--memory-reservation", metavar="bytes", help="Memory soft limit")
    p.add_argument("--memory-swap", metavar="bytes",
                   help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
    p.add_argument("--pids-limit", metavar="int", help="Tune container pids limit (set -1 for unlimited)")
    p.add_argument("--restart", metavar="string", help="Restart policy to apply when a container exits")


def register(tree: CommandTree) -> None:
    tree.group("container", "Manage containers")
    tree.add(["stats", "container stats"], "[OPTIONS] [CONTAINER...]",
             "Display a live stream of container(s) resource usage statistics", cmd_stats, _stats_flags, Arity(0))
    tree.add(["update", "container update"], "[OPTIONS] CONTAINER [CONTAINER...]",
             "Update configuration of one or more containers", cmd_update, _update_flags, Arity(1))
