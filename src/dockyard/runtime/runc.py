"""The OCI runtime binary (runc or a compatible one), driven through its CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from .. import errors
from . import cgroupdriver


class RuntimeError_(errors.SystemError_):
    """The runtime refused or failed; the message is the runtime's own."""


class Runc:
    def __init__(self, binary: str, root: str, name: str = "runc") -> None:
        path = binary if os.path.isabs(binary) else shutil.which(binary, path="/usr/local/sbin:/usr/local/bin:"
                                                                              "/usr/sbin:/usr/bin:/sbin:/bin")
        if not path:
            raise errors.SystemError_(f"runtime {name}: {binary} not found")
        self.binary = path
        self.root = root
        self.name = name
        os.makedirs(root, mode=0o700, exist_ok=True)

    @property
    def global_args(self) -> list[str]:
        """Flags that go before the command; the shim passes them on too."""
        return ["--root", self.root, *cgroupdriver.runc_args()]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([self.binary, *self.global_args, *args], capture_output=True, text=True)
        if check and res.returncode != 0:
            raise RuntimeError_(error_message(res.stderr) or f"{self.name} {args[0]} failed")
        return res

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def state(self, container_id: str) -> dict[str, Any] | None:
        """runc's state (status: created, running, paused, stopped), None if it does not know the ID."""
        res = self._run("state", container_id, check=False)
        if res.returncode != 0:
            return None
        return json.loads(res.stdout)

    def list(self) -> list[dict[str, Any]]:
        res = self._run("list", "--format", "json")
        return json.loads(res.stdout or "null") or []

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill", *(["--all"] if all_processes else []), container_id, str(signal)]
        res = self._run(*args, check=False)
        if res.returncode != 0:
            msg = error_message(res.stderr)
            if "not running" in msg or "process already finished" in msg or "does not exist" in msg:
                raise errors.Conflict(msg)
            # A container exiting while it is signalled makes runc fail on the cgroup its exit removes
            # ("lstat /sys/fs/cgroup/devices/...: no such file"): that is "exited meanwhile", not a fault.
            if (self.state(container_id) or {}).get("status") in (None, "stopped"):
                raise errors.Conflict(msg)
            raise RuntimeError_(msg)

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def delete(self, container_id: str, force: bool = False) -> None:
        if not os.path.exists(os.path.join(self.root, container_id)):
            return  # runc keeps nothing for it (deleted already): spare a runc process on every rm
        res = self._run("delete", *(["--force"] if force else []), container_id, check=False)
        if res.returncode != 0 and "does not exist" not in res.stderr and "not exist" not in res.stderr:
            raise RuntimeError_(error_message(res.stderr))

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """New cgroup limits for a running container (``runc update -r``)."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(resources, f)
        try:
            res = self._run("update", "-r", f.name, container_id, check=False)
        finally:
            os.unlink(f.name)
        if res.returncode != 0:
            raise RuntimeError_(error_message(res.stderr) or f"{self.name} update failed")

    def command(self, *args: str, log_path: str | None = None) -> list[str]:
        """The argv of a runtime command another process runs (exec, run), logging JSON to ``log_path``."""
        log = ["--log", log_path, "--log-format", "json"] if log_path else []
        return [self.binary, *self.global_args, *log, *args]

    def ps(self, container_id: str) -> list[int]:
        res = self._run("ps", "--format", "json", container_id)
        return json.loads(res.stdout or "null") or []


def error_message(stderr: str) -> str:
    """The useful part of runc's error output (logrus text or JSON lines, or plain)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "fatal"):
                return str(entry.get("msg", ""))
        elif "level=error" in line or "level=fatal" in line:
            _, _, msg = line.partition('msg="')
            if msg:
                return msg.rsplit('"', 1)[0].replace('\\"', '"')
    return lines[-1].strip() if lines else ""
