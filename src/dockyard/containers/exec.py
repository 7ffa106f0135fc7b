"""Exec: extra processes in a running container (``docker exec``), health probes reuse it.

Each exec is ``runc exec --process <spec>`` run by the daemon in the
foreground: runc joins the container's namespaces and cgroup, hands its own
stdio (pipes) to the process or, with a TTY, sends the PTY master over a
console socket, and exits with the process's status. The process lives in the
container's pid namespace, so it dies with the container's init.

Records follow dockerd's exec store: a finished exec stays inspectable until
the garbage collection after next finds it still finished (two sweeps,
``GC_INTERVAL`` apart, as moby's execCommandGC); a container's never-started
execs go when it exits, and all of its execs when it is removed.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import os
import secrets
import select
import socket
import struct
import sys
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import errors
from ..runtime import spec as specmod
from ..runtime.task import ExecFiles, Stdio3, Task
from .state import PAUSED, RUNNING

Publish = Callable[[str, str, str, dict[str, str]], Any]
CONSOLE_TIMEOUT = 30.0
GC_INTERVAL = 300.0  # moby's execCommandGC ticker
REAPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_reaper.py")


@dataclass
class Exec:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    user: str
    workdir: str
    tty: bool
    privileged: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    detach_keys: str
    console_size: list[int] | None
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    master: int | None = None  # the PTY master while a TTY session is open (for resize)
    error: str = ""  # the runtime refused to start the process (dockerd writes it to the stream)
    can_remove: bool = False  # seen finished by one garbage collection: the next one drops it
    done: concurrent.futures.Future[int] = field(default_factory=concurrent.futures.Future)


@dataclass
class Session:
    """The started process's stdio as the daemon sees it; fds are the caller's to close."""

    exec: Exec
    stdin: int | None = None  # pipe write end, or the PTY master for a TTY
    stdout: int | None = None  # pipe read end, or the PTY master
    stderr: int | None = None  # pipe read end (none with a TTY)


class ExecService:
    def __init__(self, containers: Any, publish: Publish, gc_interval: float = GC_INTERVAL) -> None:
        self.containers = containers
        self._publish = publish
        self._lock = threading.Lock()
        self._execs: dict[str, Exec] = {}
        self.spec_dir = os.path.join(containers.config.exec_root, "exec")
        os.makedirs(self.spec_dir, mode=0o700, exist_ok=True)
        containers.lifecycle.register(exited=self._forget_unstarted, removed=self.forget_container)
        self._closed = threading.Event()
        self._gc = threading.Thread(target=self._collect, args=(gc_interval,), name="exec-gc", daemon=True)
        self._gc.start()

    def close(self) -> None:
        self._closed.set()
        self._gc.join(5)

    def count(self) -> int:
        """Exec records held (the engine's debug counts)."""
        with self._lock:
            return len(self._execs)

    # -- records ------------------------------------------------------------------
    def get(self, exec_id: str) -> Exec:
        with self._lock:
            e = self._execs.get(exec_id)
        if e is None:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return e

    def startable(self, exec_id: str) -> Exec:
        """The exec, while its container runs: dockerd forgets a container's execs when it stops, so
        starting one then is "No such exec instance" (told before the connection is taken over)."""
        e = self.get(exec_id)
        if not e.started and self.containers.get(e.container_id).state.status not in (RUNNING, PAUSED):
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return e

    def of_container(self, container_id: str) -> list[str]:
        """The container's execs not yet ended (created or running): inspect's ``ExecIDs``, as dockerd."""
        with self._lock:
            return [e.id for e in self._execs.values() if e.container_id == container_id and e.exit_code is None]

    def forget_container(self, container_id: str) -> None:
        """Every exec of a removed container (the lifecycle's ``removed`` hook)."""
        with self._lock:
            for eid in [e.id for e in self._execs.values() if e.container_id == container_id]:
                del self._execs[eid]

    def forget(self, exec_id: str) -> None:
        """Drop the record of an exec whose caller has its result (a run to completion: a health probe,
        the CRI's ExecSync), rather than keep it for inspect until the sweep."""
        with self._lock:
            self._execs.pop(exec_id, None)

    def _forget_unstarted(self, container_id: str) -> None:
        """The execs a stopped container can no longer start (the lifecycle's ``exited`` hook), as
        dockerd's Cleanup unregisters the execs still in the container's store."""
        with self._lock:
            for eid in [e.id for e in self._execs.values() if e.container_id == container_id and not e.started]:
                del self._execs[eid]

    def _collect(self, interval: float) -> None:
        """Drop finished execs, each after a second sweep still finds it finished (inspectable meanwhile)."""
        while not self._closed.wait(interval):
            with self._lock:
                for e in list(self._execs.values()):
                    if e.can_remove:
                        del self._execs[e.id]
                    elif e.exit_code is not None:
                        e.can_remove = True

    def create(self, ref: str, body: dict[str, Any]) -> Exec:
        c = self.containers.get(ref)
        cmd = body.get("Cmd") or []
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise errors.InvalidParameter("No exec command specified")
        if c.state.status == PAUSED:
            raise errors.legacy(errors.Conflict(f"container {c.id} is paused, unpause the container before exec"),
                                f"Container {c.id} is paused, unpause the container before exec")
        if c.state.status != RUNNING:
            raise errors.legacy(errors.Conflict(f"container {c.id} is not running"),
                                f"Container {c.id} is not running")
        e = Exec(id=secrets.token_hex(32), container_id=c.id, cmd=list(cmd), env=list(body.get("Env") or []),
                 user=body.get("User") or "", workdir=body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
                 privileged=bool(body.get("Privileged")), attach_stdin=bool(body.get("AttachStdin")),
                 attach_stdout=bool(body.get("AttachStdout")), attach_stderr=bool(body.get("AttachStderr")),
                 detach_keys=body.get("DetachKeys") or "", console_size=body.get("ConsoleSize"))
        if e.workdir and not e.workdir.startswith("/"):
            raise errors.InvalidParameter(f"the working directory '{e.workdir}' is invalid, "
                                          f"it needs to be an absolute path")
        with self._lock:
            self._execs[e.id] = e
        self._event(c, f"exec_create: {' '.join(e.cmd)}", e.id)
        return e

    def _event(self, c: Any, action: str, exec_id: str, extra: dict[str, str] | None = None) -> None:
        attrs = {"image": c.image_name, "name": c.name.lstrip("/"), "execID": exec_id}
        attrs.update(c.config.get("Labels") or {})
        attrs.update(extra or {})
        self._publish("container", action, c.id, attrs)

    # -- start --------------------------------------------------------------------
    def start(self, exec_id: str, detach: bool = False) -> Session:
        """Start the process; with ``detach`` its stdio is /dev/null and nothing is returned to pump.

        A detached or TTY start returns once the process runs, as dockerd's (inspect shows its pid). An
        attached one returns as soon as runc is spawned: its output flows whenever it comes, and waiting
        here for runc's pid file would only delay the stream (``pid`` reads the file on demand).
        """
        e = self.get(exec_id)
        with self._lock:
            if e.started:
                raise errors.Conflict(f"Error: Exec command {e.id} has already run")
            e.started = True
        c = self.containers.get(e.container_id)
        if c.state.status == PAUSED:
            raise errors.legacy(errors.Conflict(f"container {c.id} is paused, unpause the container before exec"),
                                f"Container {c.id} is paused, unpause the container before exec")
        if c.state.status != RUNNING:
            raise errors.Conflict(f"container {c.id} is not running")
        task = self.containers.task(c)
        files = self._files(e)
        process = self._process(c, e, task)
        console: socket.socket | None = None
        console_path = ""
        if e.tty and not detach:
            console_path = os.path.join(task.console_dir(), "x" + e.id[:12])
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            console.bind(console_path)
            console.listen(1)
        session = Session(e)
        want_in = e.attach_stdin and not detach
        fds_to_close: list[int] = []
        try:
            if detach or e.tty:
                stdio = Stdio3()
            else:
                in_r, in_w = os.pipe2(os.O_CLOEXEC) if want_in else (-1, -1)
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                fds_to_close += [fd for fd in (in_r, out_w, err_w) if fd >= 0]
                stdio = Stdio3(in_r if want_in else subprocess.DEVNULL, out_w, err_w)
                session.stdin = in_w if want_in else None
                session.stdout, session.stderr = out_r, err_r
            proc = task.exec(process, files, stdio, console_socket=console_path or None,
                             wrapper=[sys.executable, "-I", "-S", REAPER, files.pid] if console else None)
            if console is not None:
                master = _receive_master(console, proc)
                if master is not None:
                    session.stdin = session.stdout = e.master = master
        finally:
            for fd in fds_to_close:
                os.close(fd)
            if console is not None:
                console.close()
                try:
                    os.unlink(console_path)
                except FileNotFoundError:
                    pass
        e.running = True
        self._event(c, f"exec_start: {' '.join(e.cmd)}", e.id)
        waiter = threading.Thread(target=self._wait, args=(c, e, proc, files), daemon=True)
        waiter.start()
        if session.stdout is None and not detach:
            waiter.join()  # the runtime failed before the process had a terminal; e.error says why
        if detach or e.tty:
            self.wait_started(e)
            self.pid(e)
        return session

    def _files(self, e: Exec) -> ExecFiles:
        return ExecFiles.under(self.spec_dir, e.id)

    def pid(self, e: Exec) -> int:
        """The process's pid: runc writes it once the process runs; 0 before that or if it never ran."""
        files = self._files(e)
        # runc writes the file just after starting the process, which may already have written output:
        # wait out that window (milliseconds) rather than show Pid 0 for a running exec
        deadline = time.monotonic() + 0.5
        while not e.pid and e.running and not e.done.done():
            e.pid = files.read_pid()
            if e.pid or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        return e.pid

    def _wait(self, c: Any, e: Exec, proc: subprocess.Popen[bytes], files: ExecFiles) -> None:
        code = proc.wait()
        if not e.pid:
            e.pid = files.read_pid()
        # runc exits with the process's status: only a failure can have its reason in the log
        failure = files.failure() if code != 0 else ""
        if failure:
            msg = f"OCI runtime exec failed: {failure}: unknown"
            low = failure.lower()
            code = 127 if ("executable file not found" in low or "no such file or directory" in low) else 126
            e.error = msg
            e.pid = 0
        e.exit_code = code if code >= 0 else 128 - code
        e.running = False
        self._event(c, "exec_die", e.id, {"exitCode": str(e.exit_code)})
        if not e.done.done():
            e.done.set_result(e.exit_code)
        files.remove()  # after the result: the client's stream ends on it, the files are ours alone

    def _process(self, c: Any, e: Exec, task: Task) -> dict[str, Any]:
        """The container's process spec with the exec's command, env, user, cwd and terminal."""
        process = task.bundle.process()
        process["args"] = e.cmd
        process["terminal"] = e.tty
        process.pop("consoleSize", None)
        if e.tty and e.console_size and all(e.console_size):
            process["consoleSize"] = {"height": e.console_size[0], "width": e.console_size[1]}
        env: dict[str, str] = {}
        for item in list(process.get("env") or []) + e.env:
            env[item.partition("=")[0]] = item
        process["env"] = list(env.values())
        if e.user:
            user = specmod.resolve_user(self.containers.rootfs(c.id), e.user,
                                        c.host_config.get("GroupAdd"))
            process["user"] = {"uid": user.uid, "gid": user.gid,
                               **({"additionalGids": user.additional_gids} if user.additional_gids else {})}
        if e.workdir:
            process["cwd"] = e.workdir
        if e.privileged:
            caps = _available_caps()
            process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        return process

    # -- tty ----------------------------------------------------------------------------
    def resize(self, exec_id: str, height: int, width: int) -> None:
        e = self.get(exec_id)
        if not e.running:
            raise errors.Conflict(f"Exec {e.id} is not running, so it can not be resized.")
        if e.master is not None:
            fcntl.ioctl(e.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def wait_started(self, e: Exec, timeout: float = 30.0) -> None:
        """Until the process runs or the runtime gave up (what runc wrote on stderr is then its error)."""
        files = self._files(e)
        deadline = time.monotonic() + timeout
        while not e.pid and not e.done.done() and time.monotonic() < deadline:
            if files.started():
                return
            try:
                e.done.result(0.002)
            except concurrent.futures.TimeoutError:
                pass

    def close_session(self, session: Session) -> None:
        session.exec.master = None
        for fd in {session.stdin, session.stdout, session.stderr}:
            if fd is not None:
                os.close(fd)

    # -- run to completion (health probes) -------------------------------------------------
    def run(self, ref: str, cmd: list[str], timeout: float, limit: int = 4096) -> tuple[int, str]:
        """Run ``cmd`` without a TTY and return (exit code, combined output cut to ``limit`` bytes).

        On timeout the process is killed and -1 returned, as dockerd's probe does.
        """
        e = self.create(ref, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
        session = self.start(e.id)
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + timeout
        readers = [fd for fd in (session.stdout, session.stderr) if fd is not None]
        try:
            while readers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._kill(e)
                    return -1, f"Health check exceeded timeout ({_duration(timeout)})"
                ready, _, _ = select.select(readers, [], [], remaining)
                for fd in ready:
                    data = os.read(fd, 65536)
                    if not data:
                        readers.remove(fd)
                    elif size < limit:
                        chunks.append(data[:limit - size])
                        size += len(chunks[-1])
            try:
                code = e.done.result(max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                self._kill(e)
                return -1, f"Health check exceeded timeout ({_duration(timeout)})"
        finally:
            for fd in (session.stdout, session.stderr):
                if fd is not None:
                    os.close(fd)
            self.forget(e.id)
        output = e.error + "\r\n" if e.error else b"".join(chunks).decode(errors="replace")
        return code, output

    def _kill(self, e: Exec) -> None:
        if self.pid(e):
            try:
                os.kill(e.pid, 9)
            except ProcessLookupError:
                pass


def _available_caps() -> list[str]:
    """Every capability the daemon's bounding set holds, as dockerd grants a privileged exec."""
    with open("/proc/self/status", encoding="ascii") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    # ALL_CAPS is in the kernel's numbering order
    return [cap for bit, cap in enumerate(specmod.ALL_CAPS) if bounding >> bit & 1]


def _receive_master(console: socket.socket, proc: subprocess.Popen[bytes]) -> int | None:
    """Wait for runc to send the PTY master; None if runc ended first (the log says why)."""
    console.settimeout(0.05)
    deadline = time.monotonic() + CONSOLE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            conn, _ = console.accept()
        except socket.timeout:
            if proc.poll() is not None:
                return None
            continue
        with conn:
            conn.settimeout(CONSOLE_TIMEOUT)
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        return fds[0] if fds else None
    return None


def _duration(seconds: float) -> str:
    """Go's time.Duration text for whole and fractional seconds (30s, 1.5s, 500ms)."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"
