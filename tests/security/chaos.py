"""Chaos: docker-py clients in threads against one dockyardd that is ``kill -9``ed on a schedule.

Each worker loops over a random mix of what users do (run, exec, logs -f, attach, cp both ways, build,
events, network connect/disconnect, volume create/rm), several requests per keep-alive connection, each
call with a deadline. A killer thread kills the daemon with SIGKILL at fixed intervals and starts it
again on the same roots. Afterwards the invariants are checked: no call outlived its deadline, no 5xx,
no traceback in the daemon's log, every record agrees with runc, and after removing everything nothing
is left on the host (mounts, shims, veths, netns, iptables rules, cgroups, runc state) and the daemon's
RSS is under a bound.

``tests/security/test_chaos.py`` runs a short round in ``make test``; ``make bench`` runs a long one:
``python tests/security/chaos.py --seconds 600``.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import docker
import requests
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, when run as a script
from refdocker import rss_kb  # noqa: E402

CALL_DEADLINE = 60.0  # a client call may take this long; longer is a hang
RSS_BOUND_MIB = 150


@dataclass
class Findings:
    hangs: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    calls: int = 0
    failed_calls: int = 0  # the daemon was down or killed under the call: expected
    kills: int = 0
    container_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, bucket: list[str], text: str) -> None:
        with self.lock:
            bucket.append(text)


def _tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Worker:
    """One client: its own docker-py client (a keep-alive pool) and its own objects."""

    def __init__(self, daemon, n: int, rng: random.Random, findings: Findings, stop: threading.Event) -> None:
        self.d = daemon
        self.n = n
        self.rng = rng
        self.findings = findings
        self.stop = stop
        self.api = docker.APIClient(base_url=daemon.host, version="1.44", timeout=CALL_DEADLINE)
        self.tag = f"chaos{n}"

    def ops(self) -> list[Callable[[], None]]:
        return [self.run, self.exec, self.logs_follow, self.attach, self.cp_in_out, self.build, self.events,
                self.network, self.volume, self.keepalive_burst]

    def loop(self) -> None:
        ops = self.ops()
        while not self.stop.is_set():
            op = self.rng.choice(ops)
            start = time.monotonic()
            try:
                op()
            except docker.errors.APIError as e:
                status = e.response.status_code if e.response is not None else 0
                if status >= 500:
                    self.findings.note(self.findings.server_errors, f"{op.__name__}: {status} {e.explanation}")
                else:
                    self._failed()
            except (requests.exceptions.ReadTimeout, TimeoutError) as e:
                self.findings.note(self.findings.hangs, f"{op.__name__}: {e!r}")
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.ProtocolError, ConnectionError, OSError,
                    docker.errors.DockerException, tarfile.TarError, EOFError):
                # the daemon was killed under the call or is not up yet
                self._failed()
                time.sleep(0.2)
            else:
                with self.findings.lock:
                    self.findings.calls += 1
            elapsed = time.monotonic() - start
            if elapsed > CALL_DEADLINE + 5:
                self.findings.note(self.findings.hangs, f"{op.__name__} took {elapsed:.1f} s")

    def _failed(self) -> None:
        with self.findings.lock:
            self.findings.failed_calls += 1

    def _container(self, cmd: list[str], **kw) -> str:
        c = self.api.create_container("busybox", cmd, labels={"chaos": self.tag}, **kw)
        with self.findings.lock:
            self.findings.container_ids.add(c["Id"])
        return c["Id"]

    def _rm(self, cid: str) -> None:
        self.api.remove_container(cid, force=True, v=True)

    # the operations: each cleans up after itself when the daemon lets it

    def run(self) -> None:
        cid = self._container(["sh", "-c", "echo out; echo err >&2"])
        self.api.start(cid)
        self.api.wait(cid, timeout=CALL_DEADLINE)
        self.api.logs(cid)
        self._rm(cid)

    def exec(self) -> None:
        cid = self._container(["sleep", "60"])
        self.api.start(cid)
        for _ in range(self.rng.randint(1, 3)):
            e = self.api.exec_create(cid, ["sh", "-c", "echo hi; exit 3"])
            self.api.exec_start(e["Id"])
            self.api.exec_inspect(e["Id"])
        self._rm(cid)

    def logs_follow(self) -> None:
        cid = self._container(["sh", "-c", "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done"])
        self.api.start(cid)
        out = b"".join(self.api.logs(cid, stream=True, follow=True))
        self._rm(cid)
        if out and b"5" not in out:
            raise AssertionError(f"logs -f ended early: {out!r}")

    def attach(self) -> None:
        cid = self._container(["sh", "-c", "sleep 0.3; echo attached"])
        sock = self.api.attach_socket(cid, params={"stdout": 1, "stderr": 1, "stream": 1})
        try:
            self.api.start(cid)
            raw = sock._sock if hasattr(sock, "_sock") else sock
            raw.settimeout(CALL_DEADLINE)
            while raw.recv(4096):
                pass
        finally:
            sock.close()
        self._rm(cid)

    def cp_in_out(self) -> None:
        cid = self._container(["sleep", "60"])
        self.api.start(cid)
        payload = os.urandom(self.rng.randint(1, 256 * 1024))
        self.api.put_archive(cid, "/tmp", _tar_of({"blob": payload}))
        stream, _ = self.api.get_archive(cid, "/tmp/blob")
        data = b"".join(stream)
        self._rm(cid)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("blob")
            got = member.read() if member else b""
        if got != payload:
            raise AssertionError("cp round trip changed the bytes")

    def build(self) -> None:
        ctx = _tar_of({"Dockerfile": b"FROM busybox\nCOPY f /f\nRUN cat /f\n",
                       "f": uuid.uuid4().hex.encode()})
        tag = f"{self.tag}:{uuid.uuid4().hex[:8]}"
        for _ in self.api.build(fileobj=io.BytesIO(ctx), custom_context=True, tag=tag, rm=True,
                                forcerm=True, decode=True):
            pass
        self.api.remove_image(tag, force=True)

    def events(self) -> None:
        now = time.time()
        for _ in self.api.events(since=now - 5, until=now + 0.5, decode=True):
            pass

    def network(self) -> None:
        net = self.api.create_network(f"{self.tag}-{uuid.uuid4().hex[:6]}")["Id"]
        cid = self._container(["sleep", "60"])
        try:
            self.api.start(cid)
            self.api.connect_container_to_network(cid, net)
            self.api.disconnect_container_from_network(cid, net)
        finally:
            self._rm(cid)
            self.api.remove_network(net)

    def volume(self) -> None:
        name = f"{self.tag}-{uuid.uuid4().hex[:6]}"
        self.api.create_volume(name)
        cid = self._container(["sh", "-c", "echo x > /v/x"], host_config=self.api.create_host_config(
            binds=[f"{name}:/v"]))
        self.api.start(cid)
        self.api.wait(cid, timeout=CALL_DEADLINE)
        self._rm(cid)
        self.api.remove_volume(name)

    def keepalive_burst(self) -> None:
        for _ in range(self.rng.randint(3, 10)):
            self.rng.choice([self.api.version, self.api.containers, self.api.images, self.api.info,
                             lambda: self.api.containers(all=True), self.api.networks, self.api.volumes])()


def _killer(d, interval: float, stop: threading.Event, findings: Findings, rss: list[int]) -> None:
    while not stop.wait(interval):
        rss.append(rss_kb(d.proc.pid))
        d.stop(sig=9)
        with findings.lock:
            findings.kills += 1
        d.start(timeout=60)


def host_state(d, bridge: str) -> dict[str, object]:
    """What a container's life leaves on the host, restricted to this daemon's roots and bridge."""
    base = str(d.base)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = sorted(line.split()[4] for line in f if base in line)
    conmons = []
    runcs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        joined = b" ".join(argv)
        if not argv or (d.exec_root.encode() not in joined and d.data_root.encode() not in joined):
            continue
        name = os.path.basename(argv[0])
        if name == b"conmon":
            conmons.append(pid)
        elif name == b"runc":
            runcs.append(pid)
    rules = sorted(line for table in ("filter", "nat")
                   for line in subprocess.run(["iptables-save", "-t", table], capture_output=True,
                                              text=True).stdout.splitlines()
                   if bridge in line.split())

    def listing(path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []

    return {
        "mounts": mounts,
        "conmon": conmons,
        "runc": runcs,
        "veths on the bridge": listing(f"/sys/class/net/{bridge}/brif"),
        "iptables": rules,
        "netns files": listing(os.path.join(d.exec_root, "netns")),
        "runc state": listing(os.path.join(d.exec_root, "runtime-runc")),
        "container dirs": listing(os.path.join(d.data_root, "containers")),
    }


def runc_disagreements(d) -> list[str]:
    """Containers whose record says running while runc says otherwise, or the reverse."""
    api = docker.APIClient(base_url=d.host, version="1.44", timeout=CALL_DEADLINE)
    out = []
    for c in api.containers(all=True):
        info = api.inspect_container(c["Id"])
        res = subprocess.run(["runc", "--root", os.path.join(d.exec_root, "runtime-runc"), "state", c["Id"]],
                             capture_output=True, text=True)
        runc_running = res.returncode == 0 and '"status": "running"' in res.stdout
        if info["State"]["Running"] and not info["State"]["Paused"] and not info["State"]["Restarting"] \
                and not runc_running:
            out.append(f"{c['Id'][:12]}: record running, runc {res.stdout.strip() or res.stderr.strip()}")
        if runc_running and not info["State"]["Running"]:
            out.append(f"{c['Id'][:12]}: runc running, record {info['State']['Status']}")
    return out


def run_chaos(d, seconds: float, workers: int = 4, kill_every: float = 12.0, seed: int = 1) -> dict:
    """The whole round against a started daemon with busybox loaded; returns what was found."""
    bridge = d.bridge_args()[1] if d.bridge_args() else "dockyard0"
    # warm-up: the bridge, its chains and pools exist from here on, as in the leak test
    api = docker.APIClient(base_url=d.host, version="1.44", timeout=CALL_DEADLINE)
    c = api.create_container("busybox", ["true"], ports=[80],
                             host_config=api.create_host_config(port_bindings={80: ("127.0.0.1", None)}))
    api.start(c["Id"])
    api.wait(c["Id"])
    api.remove_container(c["Id"], force=True)
    before = host_state(d, bridge)
    log_start = os.path.getsize(d.log_path)

    findings = Findings()
    stop = threading.Event()
    rss: list[int] = []
    threads = [threading.Thread(target=Worker(d, i, random.Random(seed * 100 + i), findings, stop).loop,
                                daemon=True) for i in range(workers)]
    killer = threading.Thread(target=_killer, args=(d, kill_every, stop, findings, rss), daemon=True)
    for t in threads:
        t.start()
    killer.start()
    time.sleep(seconds)
    stop.set()
    killer.join(90)
    for t in threads:
        t.join(CALL_DEADLINE + 30)
    stuck = [t.name for t in threads if t.is_alive()]

    disagreements = runc_disagreements(d)
    api = docker.APIClient(base_url=d.host, version="1.44", timeout=CALL_DEADLINE)
    for c in api.containers(all=True, quiet=True):
        findings.container_ids.add(c["Id"])
        api.remove_container(c["Id"], force=True, v=True)
    for n in api.networks():
        if n["Name"].startswith("chaos"):
            api.remove_network(n["Id"])
    for v in api.volumes().get("Volumes") or []:
        if v["Name"].startswith("chaos"):
            api.remove_volume(v["Name"])
    after = host_state(d, bridge)
    with open(d.log_path, "rb") as f:
        f.seek(log_start)
        log_text = f.read().decode(errors="replace")
    # the cgroup parent is shared by every daemon on the machine: look only for this round's containers
    cgroups = [p for cid in findings.container_ids for p in Path("/sys/fs/cgroup").glob(f"**/{cid}")]
    tracebacks = [chunk[:2000] for chunk in log_text.split("Traceback (most recent call last)")[1:]]
    return {
        "calls": findings.calls, "failed_calls": findings.failed_calls, "kills": findings.kills,
        "hangs": findings.hangs + [f"worker {t} never returned" for t in stuck],
        "server_errors": findings.server_errors,
        "tracebacks": tracebacks,
        "runc_disagreements": disagreements,
        "leaks": {**{k: (before[k], after[k]) for k in before if before[k] != after[k]},
                  **({"cgroups": cgroups} if cgroups else {})},
        "rss_mib": max(rss + [rss_kb(d.proc.pid)]) // 1024,
    }


def main() -> int:
    import argparse
    import tempfile
    from conftest import make_daemon  # noqa: E402
    from fixtures.busybox import build_busybox  # noqa: E402
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--kill-every", type=float, default=20)
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dychaos"))
    d = make_daemon(base)
    d.start()
    try:
        img = build_busybox(str(base / "busybox.tar"))
        d.cli("load", "-i", img.path)
        result = run_chaos(d, args.seconds, args.workers, args.kill_every)
    finally:
        d.teardown()
    for key, value in result.items():
        print(f"{key}: {value}")
    bad = any(result[k] for k in ("hangs", "server_errors", "tracebacks", "runc_disagreements", "leaks")) \
        or result["rss_mib"] > RSS_BOUND_MIB
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
