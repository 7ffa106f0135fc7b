"""Fixtures: a dockyardd on private paths, the real docker CLI and docker-py pointed at it."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.busybox import BuiltImage, build_busybox  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCKYARDD = str(Path(sys.executable).parent / "dockyardd")
DOCKER = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin") or "docker"


@dataclass
class Daemon:
    """A running dockyardd and the ways a user talks to it."""

    base: Path
    socket: str
    data_root: str
    exec_root: str
    extra_args: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: str = ""

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.base / "docker-config")
        env.pop("DOCKER_TLS_VERIFY", None)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def bridge_args(self) -> list[str]:
        """A default bridge of this daemon's own (daemons of parallel tests must not share one)."""
        if "bridge" in self.config or \
                any(a in ("-b", "--bridge") or a.startswith("--bridge=") for a in self.extra_args):
            return []
        return ["--bridge", "dy" + hashlib.sha1(str(self.base).encode()).hexdigest()[:10]]

    def start(self, timeout: float = 20.0) -> None:
        self.log_path = str(self.base / "dockyardd.log")
        (self.base / "daemon.json").write_text(json.dumps(self.config))
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [DOCKYARDD, "-H", self.host, "--data-root", self.data_root, "--exec-root", self.exec_root,
             "--pidfile", str(self.base / "dockyardd.pid"), "--config-file", str(self.base / "daemon.json"),
             "--log-level", "debug", *self.bridge_args(), *self.extra_args],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited with {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.socket):
                try:
                    docker.APIClient(base_url=self.host, version="1.44", timeout=2).ping()
                    return
                except Exception:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"dockyardd did not come up:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def teardown(self) -> None:
        """Remove what the tests left (containers outlive a stopped daemon), stop, drop the bridge.

        A test that killed the daemon gets it started again first, so its
        containers are reaped by the engine rather than left on the machine.
        """
        if self.proc is None and os.path.exists(self.data_root):
            try:
                self.start()
            except RuntimeError:
                pass
        if self.proc is not None:
            try:
                api = docker.APIClient(base_url=self.host, version="1.44", timeout=60)
                for c in api.containers(all=True, quiet=True):
                    api.remove_container(c["Id"], force=True, v=True)
                for n in api.networks():
                    if n["Name"] not in ("bridge", "host", "none"):
                        api.remove_network(n["Id"])
            except docker.errors.DockerException:
                pass
        self.stop()
        for arg in self.bridge_args()[1:]:
            subprocess.run(["ip", "link", "del", arg], capture_output=True)
            _drop_rules(arg)
        shutil.rmtree(os.path.dirname(self.socket), ignore_errors=True)  # make_daemon's own directory

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def cli(self, *args: str, input: bytes | str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this daemon."""
        if isinstance(input, str):
            input = input.encode()
        res = subprocess.run([DOCKER, *args], input=input, capture_output=True, env=self.env(),
                             timeout=timeout)
        res.stdout_text = res.stdout.decode(errors="replace")  # type: ignore[attr-defined]
        res.stderr_text = res.stderr.decode(errors="replace")  # type: ignore[attr-defined]
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stderr_text}\n{res.stdout_text}")
        return res

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, version="auto", timeout=120)

    def api(self) -> docker.APIClient:
        return docker.APIClient(base_url=self.host, version="auto", timeout=120)


def _drop_rules(word: str) -> None:
    """iptables rules naming ``word`` (a bridge dockerd would keep across restarts) deleted."""
    for table in ("filter", "nat", "raw"):
        out = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("-A ") and word in line.split():
                subprocess.run(["iptables", "-t", table, "-D", *shlex.split(line[3:])], capture_output=True)


def make_daemon(tmp: Path, extra_args: list[str] | None = None) -> Daemon:
    # Unix socket paths are limited to 108 bytes; keep the socket short.
    sock_dir = tempfile.mkdtemp(prefix="dy", dir="/tmp")
    return Daemon(base=tmp, socket=os.path.join(sock_dir, "d.sock"), data_root=str(tmp / "data"),
                  exec_root=str(tmp / "exec"), extra_args=list(extra_args or []))


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    path = tmp_path_factory.mktemp("images") / "busybox.tar"
    return build_busybox(str(path))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    """One dockyardd per test module; tests in a module share its state."""
    d = make_daemon(tmp_path_factory.mktemp("dockyardd"))
    d.start()
    yield d
    d.teardown()


@pytest.fixture(scope="module")
def d(daemon: Daemon, busybox_tar: BuiltImage) -> Daemon:
    """The module's dockyardd with busybox loaded (its teardown removes the containers left)."""
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


@pytest.fixture
def fresh_daemon(tmp_path: Path):
    """A dockyardd of the test's own, for tests that restart or break it."""
    d = make_daemon(tmp_path)
    yield d
    d.teardown()


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory, busybox_tar: BuiltImage, request: pytest.FixtureRequest):
    """The reference dockerd with busybox loaded, for side-by-side tests; a module that sets
    ``REF_BRIDGE = True`` gets it a bridge of its own."""
    from dockerd_side import start_ref
    r = start_ref(tmp_path_factory.mktemp("refdocker"), busybox_tar.path,
                  bridge=getattr(request.module, "REF_BRIDGE", False))
    yield r
    r.stop()
