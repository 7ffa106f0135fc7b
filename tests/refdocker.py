"""The reference dockerd (Debian's docker.io) on private paths, for interop tests and bench/.

Everything it would write outside its own directory is redirected: socket, data root,
exec root, pidfile, daemon.json (so /etc/docker/daemon.json is never read) and the
trust key that dockerd 20.10 otherwise writes to /etc/docker/key.json. Without
``--containerd`` dockerd 20.10 spawns its own containerd (config, socket and pid file
under <exec-root>/containerd), which stops when dockerd stops.

The one path dockerd hard-codes is the plugin discovery dir /run/docker/plugins; it is
removed again on stop when this helper saw it appear and it is still empty.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker

DOCKERD = shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin")
DOCKER = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin") or "docker"
# dockerd finds containerd, runc and docker-init on PATH.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLUGINS_DIR = Path("/run/docker/plugins")

BRIDGE_NAME = "refdocker0"
BRIDGE_CIDR = "10.213.0.1/24"


def available() -> bool:
    return DOCKERD is not None


def rss_kb(pid: int) -> int:
    """Resident set size of one process, from /proc/PID/status (0 when it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass
class RefDocker:
    """A private dockerd + containerd pair, talked to through the real docker CLI."""

    base: Path
    socket: str
    # With a bridge, this helper creates refdocker0 itself (dockerd 20.10 refuses a
    # non-default bridge name it did not find) and deletes it on stop.
    bridge: bool = False
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    _made_plugins_dir: bool = False
    _made_bridge: bool = False

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.base / "data"

    @property
    def exec_root(self) -> Path:
        return self.base / "exec"

    @property
    def log_path(self) -> Path:
        return self.base / "dockerd.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.base / "docker-config")
        env.pop("DOCKER_TLS_VERIFY", None)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def _args(self) -> list[str]:
        # -b and --bip are exclusive; with -b dockerd takes the address of the bridge made above.
        net = ["--bridge", BRIDGE_NAME] if self.bridge else ["--bridge", "none"]
        return [DOCKERD or "dockerd",
                "--host", self.host,
                "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root),
                "--pidfile", str(self.base / "docker.pid"),
                "--config-file", str(self.base / "daemon.json"),
                "--containerd-namespace", "refbench",
                "--containerd-plugins-namespace", "refbench-plugins",
                "--iptables=false", "--ip6tables=false",
                *net, *self.extra_args]

    def _make_bridge(self) -> None:
        if Path(f"/sys/class/net/{BRIDGE_NAME}").exists():
            return
        subprocess.run(["ip", "link", "add", BRIDGE_NAME, "type", "bridge"], check=True)
        self._made_bridge = True
        subprocess.run(["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE_NAME], check=True)
        subprocess.run(["ip", "link", "set", BRIDGE_NAME, "up"], check=True)

    def start(self, timeout: float = 60.0) -> None:
        if DOCKERD is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        self.base.mkdir(parents=True, exist_ok=True)
        # dockerd 20.10 has no flag for the trust key path, only this daemon.json key.
        (self.base / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(self.base / "key.json")}))
        self._made_plugins_dir = not PLUGINS_DIR.exists()
        if self.bridge:
            self._make_bridge()
        env = dict(os.environ, PATH=SYSTEM_PATH)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self._args(), stdout=logf, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                self._cleanup()
                raise RuntimeError(f"dockerd exited with {code}:\n{self.log()}")
            if os.path.exists(self.socket) and self._ping():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dockerd did not come up in {timeout}s:\n{self.log()}")

    def _ping(self) -> bool:
        res = subprocess.run([DOCKER, "version", "--format", "{{.Server.Version}}"], env=self.env(),
                             capture_output=True, timeout=10)
        return res.returncode == 0

    def containerd_pid(self) -> int | None:
        try:
            return int((self.exec_root / "containerd" / "containerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def pids(self) -> dict[str, int]:
        """The daemon processes whose memory counts: dockerd and the containerd it spawned."""
        out: dict[str, int] = {}
        if self.proc is not None and self.proc.poll() is None:
            out["dockerd"] = self.proc.pid
        cpid = self.containerd_pid()
        if cpid is not None and os.path.exists(f"/proc/{cpid}"):
            out["containerd"] = cpid
        return out

    def rss_kb(self) -> dict[str, int]:
        return {name: rss_kb(pid) for name, pid in self.pids().items()}

    def _remove_networks(self) -> None:
        """dockerd keeps its user-defined networks, bridges included, when it stops: a test that did not
        remove one would leave a ``br-…`` bridge on the host. Its containers go first (they hold them)."""
        try:
            api = docker.APIClient(base_url=self.host, version="1.41", timeout=30)
            for c in api.containers(all=True, quiet=True):
                api.remove_container(c["Id"], force=True, v=True)
            api.prune_networks()
        except Exception:  # a dockerd that is not answering: stopping it is all that is left
            pass

    def stop(self, timeout: float = 30.0) -> None:
        cpid = self.containerd_pid()
        if self.proc is not None:
            if self.proc.poll() is None:
                self._remove_networks()
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        # dockerd stops the containerd it started; make sure, it must not outlive the test.
        if cpid is not None:
            _wait_gone(cpid, timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        # dockerd bind-mounts its data root onto itself; a killed dockerd leaves that mount.
        for mnt in reversed(_mounts_under(self.base)):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        if self._made_bridge:
            subprocess.run(["ip", "link", "del", BRIDGE_NAME], capture_output=True)
            self._made_bridge = False
        # a dockerd that died early leaves its socket behind
        Path(self.socket).unlink(missing_ok=True)
        try:
            os.rmdir(os.path.dirname(self.socket))
        except OSError:
            pass
        if self._made_plugins_dir:
            try:
                PLUGINS_DIR.rmdir()
                PLUGINS_DIR.parent.rmdir()
            except OSError:
                pass  # not empty: something else uses it now
            self._made_plugins_dir = False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def cli(self, *args: str, input: bytes | str | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this dockerd."""
        if isinstance(input, str):
            input = input.encode()
        res = subprocess.run([DOCKER, *args], input=input, capture_output=True, env=self.env(), timeout=timeout)
        res.stdout_text = res.stdout.decode(errors="replace")  # type: ignore[attr-defined]
        res.stderr_text = res.stderr.decode(errors="replace")  # type: ignore[attr-defined]
        if check and res.returncode != 0:
            raise AssertionError(f"[dockerd] docker {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stderr_text}\n{res.stdout_text}")
        return res


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base.resolve())
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].encode().decode("unicode_escape") for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def make_refdocker(base: Path | None = None, bridge: bool = False) -> RefDocker:
    """A RefDocker on fresh private paths (socket kept short: unix paths max 108 bytes)."""
    if base is None:
        base = Path(tempfile.mkdtemp(prefix="refdocker-", dir="/tmp"))
    sock_dir = tempfile.mkdtemp(prefix="rd", dir="/tmp")
    return RefDocker(base=base, socket=os.path.join(sock_dir, "docker.sock"), bridge=bridge)
