"""The task: one container's process as the engine drives it (containerd's Task/Process interface).

``Task`` is what the containers, exec, update and the builder call; they never
put conmon (``shim.py``) and the OCI runtime (``runc.py``) side by side again.
``ShimTask`` implements it over one conmon per container (which runs ``runc
create`` and keeps the container's stdio, log and exit status while the daemon
is away) and runc for everything else. ``StepTask`` is the builder's RUN: a
foreground ``runc run`` with no shim, which shares the ``RuntimeProcess`` part.

A task's bundle (``Bundle``) holds its OCI spec; the spec is read and written
through it, never by path.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from typing import IO, Any, Protocol

from .runc import Runc, error_message
from .shim import Exit, ShimInfo, ShimManager
from ..util.atomic import write_json_atomic

SPEC = "config.json"
Stdio = int | IO[Any] | None


class Bundle:
    """An OCI bundle directory: the spec (``config.json``) and, beside it, what its owner keeps."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write_spec(self, spec: dict[str, Any]) -> None:
        # not fsynced: a bundle lives no longer than its process, and a crash discards both
        write_json_atomic(os.path.join(self.path, SPEC), spec, durable=False)

    def spec(self) -> dict[str, Any]:
        with open(os.path.join(self.path, SPEC), encoding="utf-8") as f:
            return json.load(f)

    def process(self) -> dict[str, Any]:
        """A copy of the spec's process, the template of an exec's."""
        return copy.deepcopy(self.spec()["process"])

    def exists(self) -> bool:
        return os.path.isdir(self.path)


@dataclass
class ExecFiles:
    """The files of one exec: its process spec, the pid runc writes and runc's JSON log."""

    spec: str
    pid: str
    log: str

    @classmethod
    def under(cls, directory: str, exec_id: str) -> "ExecFiles":
        base = os.path.join(directory, exec_id)
        return cls(base + ".json", base + ".pid", base + ".log")

    def read_pid(self) -> int:
        """The process's pid; 0 before runc wrote it (or if the process never ran)."""
        try:
            with open(self.pid, encoding="ascii") as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def started(self) -> bool:
        return os.path.exists(self.pid)

    def failure(self) -> str:
        """The runtime's error when it could not run the process ('' when it ran)."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return ""
        return error_message(text) if ('"level":"error"' in text or '"level":"fatal"' in text) else ""

    def remove(self) -> None:
        for path in (self.log, self.pid, self.spec):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


@dataclass
class Stdio3:
    """A process's stdin, stdout and stderr as ``subprocess`` takes them."""

    stdin: Stdio = subprocess.DEVNULL
    stdout: Stdio = subprocess.DEVNULL
    stderr: Stdio = subprocess.DEVNULL


class RuntimeProcess(Protocol):
    """What every task, with a shim or without, answers."""

    id: str

    def kill(self, signal: int, all_processes: bool = False) -> None: ...
    def delete(self) -> None: ...
    def state(self) -> dict[str, Any] | None: ...


class Task(RuntimeProcess, Protocol):
    """A long-lived container's task: created, started, signalled, exec'd into and deleted."""

    bundle: Bundle

    def create(self, spec: dict[str, Any], *, tty: bool, stdin: bool, log_path: str | None,
               leave_stdin_open: bool = False) -> int: ...
    def start(self) -> None: ...
    def exec(self, process: dict[str, Any], files: ExecFiles, stdio: Stdio3, *,
             console_socket: str | None = None, wrapper: list[str] | None = None) -> subprocess.Popen[bytes]: ...
    def console_dir(self) -> str: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def update(self, resources: dict[str, Any]) -> None: ...
    def pids(self) -> list[int]: ...
    def attach_path(self) -> str: ...
    def attach(self) -> socket.socket: ...
    def resize(self, height: int, width: int) -> None: ...
    def exit_fd(self) -> int | None: ...
    def exit_status(self) -> Exit: ...
    def leftover(self) -> bool: ...


class ShimTask:
    """A container's task over its conmon shim and the OCI runtime."""

    def __init__(self, shims: ShimManager, runtime: Runc, container_id: str) -> None:
        self.id = container_id
        self.shims = shims
        self.runtime = runtime
        self.bundle = Bundle(shims.bundle(container_id))
        self._info: ShimInfo | None = None  # the shim this task launched (else read from its bundle)

    # -- lifecycle ----------------------------------------------------------------------
    def create(self, spec: dict[str, Any], *, tty: bool, stdin: bool, log_path: str | None,
               leave_stdin_open: bool = False) -> int:
        """A fresh bundle and a shim that ran ``runc create``; the container's pid (not yet started)."""
        self.shims.prepare(self.id, spec)
        self._info = self.shims.create(self.runtime, self.id, tty=tty, stdin=stdin, log_path=log_path,
                                       leave_stdin_open=leave_stdin_open)
        return self._info.pid

    def start(self) -> None:
        self.runtime.start(self.id)

    def kill(self, signal: int, all_processes: bool = False) -> None:
        self.runtime.kill(self.id, signal, all_processes)

    def delete(self) -> None:
        """The runtime's container (killed if it runs) and every file the shim kept."""
        try:
            self.runtime.delete(self.id, force=True)
        finally:
            self.shims.cleanup(self.id)

    def pause(self) -> None:
        self.runtime.pause(self.id)

    def resume(self) -> None:
        self.runtime.resume(self.id)

    def update(self, resources: dict[str, Any]) -> None:
        self.runtime.update(self.id, {k: v for k, v in resources.items() if k != "devices"})

    def state(self) -> dict[str, Any] | None:
        return self.runtime.state(self.id)

    def pids(self) -> list[int]:
        return self.runtime.ps(self.id)

    # -- exec ---------------------------------------------------------------------------
    def exec(self, process: dict[str, Any], files: ExecFiles, stdio: Stdio3, *,
             console_socket: str | None = None, wrapper: list[str] | None = None) -> subprocess.Popen[bytes]:
        """``runc exec`` of ``process`` in the container, spawned (the caller waits for it). With a
        ``console_socket`` runc detaches and sends the PTY master there; ``wrapper`` is the argv
        prefix of the process that then reaps the exec."""
        with open(files.spec, "w", encoding="utf-8") as f:
            json.dump(process, f)
        args = ["exec", "--process", files.spec, "--pid-file", files.pid]
        if console_socket:
            args += ["--tty", "--detach", "--console-socket", console_socket]
        argv = [*(wrapper or []), *self.runtime.command(*args, self.id, log_path=files.log)]
        return subprocess.Popen(argv, stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr,
                                start_new_session=True)

    def console_dir(self) -> str:
        """Where an exec's console socket goes (short paths: a unix socket path has 108 bytes)."""
        return self.shims.socket_dir

    # -- stdio --------------------------------------------------------------------------
    def attach_path(self) -> str:
        return self.shims.attach_path(self.id)

    def attach(self) -> socket.socket:
        return self.shims.attach(self.id)

    def resize(self, height: int, width: int) -> None:
        self.shims.resize(self.id, height, width)

    # -- exit ---------------------------------------------------------------------------
    def exit_fd(self) -> int | None:
        """A pidfd readable once the shim is gone (None if it is gone already or never ran)."""
        info = self._info or self.shims.load(self.id)
        return self.shims.open_pidfd(info) if info else None

    def exit_status(self) -> Exit:
        """The exit the shim recorded, or a defined error exit if it died without one."""
        return self.shims.exit_status(self.id) or self.shims.lost(self.id)

    def leftover(self) -> bool:
        """Whether a bundle or runtime state is left (a start the daemon died in, never acknowledged)."""
        return self.bundle.exists() or os.path.exists(os.path.join(self.runtime.root, self.id))


class StepTask:
    """A build step: ``runc run`` in the foreground on a bundle of the builder's, no shim, no record."""

    def __init__(self, runtime: Runc, container_id: str, bundle: str) -> None:
        self.id = container_id
        self.runtime = runtime
        self.bundle = Bundle(bundle)

    def run(self, spec: dict[str, Any], log_path: str) -> subprocess.Popen[bytes]:
        """Write the spec and spawn the process; stdout and stderr share one pipe, as a build's output."""
        self.bundle.write_spec(spec)
        argv = self.runtime.command("run", "--bundle", self.bundle.path, self.id, log_path=log_path)
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=self.bundle.path)

    def kill(self, signal: int, all_processes: bool = False) -> None:
        self.runtime.kill(self.id, signal, all_processes)

    def delete(self) -> None:
        """SIGKILL to the step's init (its own pid namespace) if it runs, then its runtime state."""
        self.runtime.delete(self.id, force=True)

    def state(self) -> dict[str, Any] | None:
        return self.runtime.state(self.id)
