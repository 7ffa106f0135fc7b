"""The per-container shim: Debian's conmon, launched and found again from files.

conmon (podman's monitor, ~2 MB RSS, see docs/decisions.md) double-forks into
its own session, runs ``runc create`` with the container's stdio on pipes or
a PTY, writes the log, reaps the container and writes its exit code to
``<exec-root>/exits/<id>``. It serves attach on a SOCK_SEQPACKET socket
(output packets carry the stream number in their first byte; input packets
are raw stdin; closing our write side closes the container's stdin) and
resize on the ``ctl`` fifo. Nothing here needs dockyardd alive: everything
needed to find a shim again is in the container's state directory.

Files in ``<exec-root>/containers/<id>/`` (the bundle):
  config.json   the OCI spec            conmon.pid   the shim's pid
  pid           the container's pid     shim.json    how the shim was launched
  attach, ctl   attach socket, resize fifo (conmon's)   oom   present after an OOM kill
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any

from .. import errors
from .runc import Runc
from ..util.atomic import write_json_atomic

CONMON = "conmon"
STDOUT, STDERR = 2, 3  # conmon's stream numbers on the attach socket
SHIM_START_TIMEOUT = 60.0


class StartError(errors.DockyardError):
    """``runc create`` failed; the message is the runtime's (e.g. executable not found)."""


@dataclass
class ShimInfo:
    container_id: str
    conmon_pid: int
    pid: int  # the container's init process, in the host pid namespace
    tty: bool
    stdin: bool
    log_path: str
    started_at: float
    conmon_start_ticks: int  # /proc/<pid>/stat start time: guards against pid reuse


@dataclass
class Exit:
    code: int
    at: float
    oom_killed: bool
    error: str = ""


class ShimManager:
    """Launches shims and finds them again; all paths live under ``exec_root``."""

    def __init__(self, exec_root: str, conmon: str = CONMON) -> None:
        self.exec_root = exec_root
        self.state_root = os.path.join(exec_root, "containers")
        self.exit_dir = os.path.join(exec_root, "exits")
        # conmon links <socket-dir>/<short id> to the bundle, so the attach socket path stays under
        # the 108 bytes a unix socket path may have.
        self.socket_dir = os.path.join(exec_root, "s")
        for d in (self.state_root, self.exit_dir, self.socket_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        found = shutil.which(conmon, path="/usr/local/libexec/podman:/usr/libexec/podman:/usr/local/bin:/usr/bin:/bin")
        if not found:
            raise errors.SystemError_("conmon is not installed (apt-get install conmon)")
        self.conmon = found

    # -- paths -----------------------------------------------------------------
    def bundle(self, container_id: str) -> str:
        return os.path.join(self.state_root, container_id)

    def exit_file(self, container_id: str) -> str:
        return os.path.join(self.exit_dir, container_id)

    def attach_path(self, container_id: str) -> str:
        return os.path.join(self.socket_dir, container_id[:12], "attach")

    def ctl_path(self, container_id: str) -> str:
        return os.path.join(self.bundle(container_id), "ctl")

    # -- lifecycle -------------------------------------------------------------
    def prepare(self, container_id: str, spec: dict[str, Any]) -> str:
        """Write a fresh bundle (removing what a previous run left) and return its path."""
        bundle = self.bundle(container_id)
        self.cleanup(container_id)
        os.makedirs(bundle, mode=0o700)
        write_json_atomic(os.path.join(bundle, "config.json"), spec)
        return bundle

    def create(self, runtime: Runc, container_id: str, *, tty: bool, stdin: bool, log_path: str | None,
               leave_stdin_open: bool = False) -> ShimInfo:
        """Start conmon, which runs ``runc create``; returns once the container exists (not yet started)."""
        bundle = self.bundle(container_id)
        try:
            os.unlink(self.exit_file(container_id))
        except FileNotFoundError:
            pass
        args = [self.conmon, "--api-version", "1", "-c", container_id, "-u", container_id[:12],
                "-n", container_id, "-r", runtime.binary, "-b", bundle,
                "-p", os.path.join(bundle, "pid"), "-P", os.path.join(bundle, "conmon.pid"),
                "--exit-dir", self.exit_dir, "--socket-dir-path", self.socket_dir,
                "--log-level", "error"]
        for arg in runtime.global_args:
            args.append(f"--runtime-arg={arg}")
        args += ["-l", f"k8s-file:{log_path}" if log_path else "none:"]
        if tty:
            args.append("-t")
        if stdin:
            args.append("-i")
            if leave_stdin_open:
                args.append("--leave-stdin-open")
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        try:
            env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                   "_OCI_SYNCPIPE": str(sync_w), "TMPDIR": self.socket_dir,  # console socket, kept short
                   "TZ": "UTC"}  # log timestamps in UTC, as json-file keeps them
            # conmon forks once more and its first process exits at once: nothing is left for us to reap.
            proc = subprocess.Popen(args, cwd=bundle, env=env, pass_fds=(sync_w,), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            os.close(sync_w)
            sync_w = -1
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise errors.SystemError_(f"conmon failed: {err.decode(errors='replace').strip()}")
            message = _read_sync(sync_r, SHIM_START_TIMEOUT)
        finally:
            os.close(sync_r)
            if sync_w >= 0:
                os.close(sync_w)
        if message is None:
            raise errors.SystemError_("container shim exited before reporting the container")
        pid = int(message.get("data", -1))
        if pid <= 0:
            text = str(message.get("message", "")).strip()
            raise StartError(_runtime_error(text))
        conmon_pid = int(_read_text(os.path.join(bundle, "conmon.pid")))
        info = ShimInfo(container_id, conmon_pid, pid, tty, stdin, log_path or "", time.time(),
                        _start_ticks(conmon_pid))
        write_json_atomic(os.path.join(bundle, "shim.json"), asdict(info))
        return info

    def load(self, container_id: str) -> ShimInfo | None:
        try:
            with open(os.path.join(self.bundle(container_id), "shim.json"), encoding="utf-8") as f:
                return ShimInfo(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None

    def known(self) -> list[str]:
        """IDs of containers that have a shim state directory (running or not)."""
        try:
            return sorted(os.listdir(self.state_root))
        except FileNotFoundError:
            return []

    def alive(self, info: ShimInfo) -> bool:
        return _start_ticks(info.conmon_pid) == info.conmon_start_ticks

    def exit_status(self, container_id: str) -> Exit | None:
        """The exit the shim recorded, None while the container runs (or if the shim died without one)."""
        path = self.exit_file(container_id)
        try:
            text = _read_text(path)
            at = os.stat(path).st_mtime
        except FileNotFoundError:
            return None
        oom = os.path.exists(os.path.join(self.bundle(container_id), "oom"))
        try:
            code = int(text)
        except ValueError:
            return Exit(255, at, oom, "container shim wrote an unreadable exit status")
        return Exit(code, at, oom)

    def open_pidfd(self, info: ShimInfo) -> int | None:
        """A pidfd that becomes readable when the shim exits (None if it is already gone)."""
        try:
            fd = os.pidfd_open(info.conmon_pid)
        except ProcessLookupError:
            return None
        if not self.alive(info):
            os.close(fd)
            return None
        return fd

    def wait(self, info: ShimInfo, timeout: float | None = None) -> Exit | None:
        """Block until the shim exits; its recorded exit, or a defined error exit if it left none."""
        fd = self.open_pidfd(info)
        if fd is not None:
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
                if not ready:
                    return None
            finally:
                os.close(fd)
        return self.exit_status(info.container_id) or self.lost(info.container_id)

    def lost(self, container_id: str) -> Exit:
        """The shim is gone without recording an exit: the container is reported exited with an error."""
        return Exit(255, time.time(), False, "container shim exited unexpectedly")

    def attach(self, container_id: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.attach_path(container_id))
        except OSError as e:
            sock.close()
            raise errors.Conflict(f"cannot attach to container {container_id}: {e.strerror}") from None
        return sock

    def resize(self, container_id: str, height: int, width: int) -> None:
        try:
            fd = os.open(self.ctl_path(container_id), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise errors.Conflict(f"cannot resize container {container_id}: {e.strerror}") from None
        try:
            os.write(fd, f"1 {height} {width}\n".encode())
        finally:
            os.close(fd)

    def cleanup(self, container_id: str) -> None:
        """Remove every file the shim and we kept for the container."""
        shutil.rmtree(self.bundle(container_id), ignore_errors=True)
        for path in (self.exit_file(container_id), os.path.join(self.socket_dir, container_id[:12])):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _runtime_error(text: str) -> str:
    from .runc import error_message

    msg = error_message(text) or text or "unknown error"
    return f"failed to create task for container: OCI runtime create failed: {msg}: unknown"


def _read_sync(fd: int, timeout: float) -> dict[str, Any] | None:
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise errors.SystemError_("timed out waiting for the container shim")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            raise
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\n", 1)[0].strip()
    if not line:
        return None
    return json.loads(line)


def _read_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (start time), or 0 if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = data[data.rfind(b")") + 2:].split()
    if fields and fields[0] == b"Z":
        return 0
    return int(fields[19])
