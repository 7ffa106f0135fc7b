"""Workloads over mutual TLS: the engine restarted with a tcp:// listener and --tlsverify.

Both engines get the same certificates (made once by dockyard's own certificate
code, ECDSA P-256) and the same flags: ``-H tcp://127.0.0.1:PORT --tlsverify
--tlscacert --tlscert --tlskey`` beside their unix socket.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from dockyard.util.tlscerts.layout import CertDir

from .engines import Engine
from .workloads import Context, Sample, workload

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fixtures.busybox import build_busybox  # noqa: E402

KEEPALIVE_REQUESTS = 200
KEEPALIVE_CONTAINERS = 20
# dockerd 20.10 serves API versions up to 1.41
LIST_PATH = "/v1.41/containers/json?all=1"
# Where each engine's TLS listener is, by engine base dir (an Engine is a plain dataclass).
_PORTS: dict[Path, int] = {}


def _certs(ctx: Context) -> CertDir:
    path, _ = ctx.artifact("tls-certs", lambda p: CertDir(p).create(["localhost"],
                                                                    [ipaddress.ip_address("127.0.0.1")]))
    return CertDir(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_tls(engine: Engine, ctx: Context) -> None:
    certs = _certs(ctx)
    port = _free_port()
    engine.daemon.stop()
    engine.daemon.extra_args = [  # type: ignore[attr-defined]
        *engine.daemon.extra_args,  # type: ignore[attr-defined]
        "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
        "--tlscacert", str(certs.file("ca.pem")),
        "--tlscert", str(certs.file("server-cert.pem")), "--tlskey", str(certs.file("server-key.pem"))]
    # a stopped engine may have removed its socket's directory
    os.makedirs(os.path.dirname(engine.daemon.socket), exist_ok=True)
    engine.daemon.start()
    _PORTS[engine.base] = port


def _cli_env(engine: Engine, ctx: Context) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{_PORTS[engine.base]}", DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=str(_certs(ctx).path), DOCKER_CONFIG=str(engine.base / "docker-config-tls"))
    return env


@workload("tls-version", "s", "docker version over mutual TLS (tcp://127.0.0.1, --tlsverify)",
          prepare=_prepare_tls)
def tls_version(engine: Engine, ctx: Context) -> float:
    env = _cli_env(engine, ctx)
    t0 = time.perf_counter()
    res = subprocess.run(["docker", "version"], capture_output=True, text=True, env=env, timeout=60)
    seconds = time.perf_counter() - t0
    if res.returncode != 0 or "Server:" not in res.stdout:
        raise RuntimeError(f"{engine.name}: docker version over TLS failed: {res.stderr}")
    return seconds


def _session(ctx: Context) -> requests.Session:
    certs = _certs(ctx)
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would replace the CA below
    s.verify = str(certs.file("ca.pem"))
    s.cert = (str(certs.file("cert.pem")), str(certs.file("key.pem")))
    return s


def _prepare_containers(engine: Engine, ctx: Context) -> None:
    _prepare_tls(engine, ctx)
    path, _ = ctx.artifact("busybox.tar", lambda p: build_busybox(str(p)))
    engine.cli("load", "-i", str(path))
    ids = engine.cli("ps", "-aq").stdout_text.split()
    if ids:
        engine.cli("rm", "-f", *ids)
    for i in range(KEEPALIVE_CONTAINERS):
        engine.cli("create", "--network", "none", "--name", f"tls{i}", "--label", f"n={i}", "busybox", "true")


@workload("tls-keepalive", "s", f"{KEEPALIVE_REQUESTS} sequential GET /containers/json?all=1 "
          f"({KEEPALIVE_CONTAINERS} containers) over one keep-alive mutual-TLS connection (requests.Session)",
          prepare=_prepare_containers)
def tls_keepalive(engine: Engine, ctx: Context) -> Sample:
    url = f"https://127.0.0.1:{_PORTS[engine.base]}{LIST_PATH}"
    with _session(ctx) as s:
        s.get(url)  # connect and handshake outside the timing
        t0 = time.perf_counter()
        for _ in range(KEEPALIVE_REQUESTS):
            r = s.get(url)
            if r.status_code != 200:
                raise RuntimeError(f"{engine.name}: GET {LIST_PATH} answered {r.status_code}: {r.text[:200]}")
        seconds = time.perf_counter() - t0
        if len(r.json()) != KEEPALIVE_CONTAINERS:
            raise RuntimeError(f"{engine.name}: listed {len(r.json())} containers, not {KEEPALIVE_CONTAINERS}")
        pools = s.get_adapter(url).poolmanager.pools
        opened = sum(pools[key].num_connections for key in pools.keys())
        if opened != 1:
            raise RuntimeError(f"{engine.name}: {opened} connections were opened, not one")
    return seconds, {"bytes": len(r.content)}
