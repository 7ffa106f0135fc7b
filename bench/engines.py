"""The two engines under test, started on private paths and driven through the real docker CLI."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# The benches start dockyardd exactly as the test fixtures do, and the reference
# dockerd through the same helper the interop tests use.
from conftest import make_daemon  # noqa: E402
import refdocker  # noqa: E402

DOCKYARD = "dockyard"
DOCKERD = "dockerd"


class Daemon(Protocol):
    proc: subprocess.Popen | None
    socket: str

    def start(self) -> None: ...
    def stop(self) -> object: ...
    def cli(self, *args: str, input: bytes | str | None = None, check: bool = True,
            timeout: float = ...) -> subprocess.CompletedProcess: ...


@dataclass
class Engine:
    """One running daemon under test."""

    name: str
    base: Path
    daemon: Daemon

    def start(self) -> None:
        self.daemon.start()

    def stop(self) -> None:
        # dockyardd's containers outlive it (live restore): tests' teardown removes them, then stops it
        getattr(self.daemon, "teardown", self.daemon.stop)()
        try:
            # make_daemon puts each socket in a directory of its own under /tmp
            os.rmdir(os.path.dirname(self.daemon.socket))
        except OSError:
            pass

    def cli(self, *args: str, input: bytes | str | None = None, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
        return self.daemon.cli(*args, input=input, check=check, timeout=timeout)

    def timed(self, *args: str, input: bytes | str | None = None) -> float:
        """Wall time of one whole docker CLI command, in seconds; a failed command is an error."""
        t0 = time.perf_counter()
        self.cli(*args, input=input)
        return time.perf_counter() - t0

    def rss_kb(self) -> dict[str, int]:
        """RSS of the daemon's whole process tree (dockerd's includes the containerd it spawned)."""
        assert self.daemon.proc is not None, f"{self.name} is not running"
        return {f"{name}[{pid}]": refdocker.rss_kb(pid) for pid, name in process_tree(self.daemon.proc.pid)}


def process_tree(root: int) -> list[tuple[int, str]]:
    """(pid, command name) of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parens: the fields after it start at the last ')'.
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        names[int(entry)] = name
        children.setdefault(ppid, []).append(int(entry))
    out: list[tuple[int, str]] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in names:
            out.append((pid, names[pid]))
        todo.extend(children.get(pid, []))
    return out


EngineFactory = Callable[[Path], Engine]


def dockyard_engine(base: Path) -> Engine:
    base.mkdir(parents=True, exist_ok=True)
    # info, not the fixtures' debug: per-request debug logging is not what users run.
    return Engine(DOCKYARD, base, make_daemon(base, extra_args=["--log-level", "info"]))


def dockerd_engine(base: Path) -> Engine:
    return Engine(DOCKERD, base, refdocker.make_refdocker(base))


def factories(names: list[str]) -> dict[str, EngineFactory]:
    known: dict[str, EngineFactory] = {DOCKYARD: dockyard_engine, DOCKERD: dockerd_engine}
    return {n: known[n] for n in names}
