"""dockyardd: load the configuration, take the data root, serve the API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import grp
import logging
import os
import signal
import socket
import ssl
import sys
from typing import Any

from ..api.app import build_app
from ..api.http import HTTPServer
from ..api.system import standard_headers
from ..engine.engine import Engine
from . import config as cfg

log = logging.getLogger("dockyard.daemon")

INSECURE_TCP_WARNING = (
    "Binding to an IP address without --tlsverify is insecure: anyone who can reach the port "
    "has root on this host. Use --tlsverify, or serve on a unix socket only.")


class DataRootLocked(Exception):
    pass


def lock_data_root(data_root: str) -> int:
    """Hold an exclusive lock on the data root for the daemon's lifetime."""
    os.makedirs(data_root, mode=0o711, exist_ok=True)
    path = os.path.join(data_root, "dockyardd.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise DataRootLocked(f"another dockyardd (pid {holder or '?'}) is using the data root {data_root}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def write_pidfile(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, path)


def tls_context(c: cfg.DaemonConfig) -> ssl.SSLContext | None:
    if not c.tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for what, path in (("tlscert", c.tlscert), ("tlskey", c.tlskey)):
        if not path:
            raise cfg.ConfigError(f"--{what} is required with --tls")
        if not os.access(path, os.R_OK):
            raise cfg.ConfigError(f"could not read {what} file {path}")
    try:
        ctx.load_cert_chain(c.tlscert, c.tlskey)
    except (ssl.SSLError, OSError) as e:
        raise cfg.ConfigError(f"could not load X509 key pair ({c.tlscert}, {c.tlskey}): {e}") from None
    if c.tlsverify:
        if not c.tlscacert:
            raise cfg.ConfigError("--tlscacert is required with --tlsverify")
        try:
            ctx.load_verify_locations(c.tlscacert)
        except (ssl.SSLError, OSError) as e:
            raise cfg.ConfigError(f"could not read CA certificate {c.tlscacert}: {e}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def listen(server: HTTPServer, host: str, c: cfg.DaemonConfig) -> asyncio.AbstractServer:
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
                probe.close()
                raise cfg.ConfigError(f"socket {path} is in use by another process")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)
            finally:
                probe.close()
        srv = await asyncio.start_unix_server(server.handle, path=path, limit=2**20)
        os.chmod(path, 0o660)
        try:
            os.chown(path, 0, grp.getgrnam(c.group).gr_gid)
        except KeyError:
            pass
        return srv
    if host.startswith("tcp://"):
        addr = host[len("tcp://"):]
        hostpart, _, port = addr.rpartition(":")
        hostpart = hostpart.strip("[]") or "0.0.0.0"
        ctx = tls_context(c)
        if ctx is None:
            if not c.allow_insecure_tcp:
                raise cfg.ConfigError(f"refusing to serve {host} without TLS: pass --tlsverify (or, knowing "
                                      "that it gives root to the network, --allow-insecure-tcp)")
            log.warning(INSECURE_TCP_WARNING)
        return await asyncio.start_server(server.handle, hostpart, int(port or (2376 if ctx else 2375)),
                                          ssl=ctx, limit=2**20, backlog=128)
    raise cfg.ConfigError(f"unsupported host {host}")


async def serve(c: cfg.DaemonConfig) -> None:
    loop = asyncio.get_running_loop()
    # Engine calls run in threads; enough of them that concurrent `docker run`s
    # do not queue behind each other.
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=64,
                                                                    thread_name_prefix="engine"))
    engine = await asyncio.to_thread(Engine, c)
    server = HTTPServer(build_app(engine), standard_headers)
    listeners: list[asyncio.AbstractServer] = []
    try:
        for host in c.hosts:
            listeners.append(await listen(server, host, c))
            log.info("API listen on %s", host)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("Daemon has completed initialization")
        await stop.wait()
        log.info("Processing signal, shutting down")
    finally:
        for srv in listeners:
            srv.close()
        await server.close_connections()
        await asyncio.to_thread(engine.close)
        for host in c.hosts:
            if host.startswith("unix://"):
                try:
                    os.unlink(host[len("unix://"):])
                except FileNotFoundError:
                    pass


def setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level={"warn": logging.WARNING, "fatal": logging.CRITICAL}.get(level, getattr(logging, level.upper())),
        format='time="%(asctime)s" level=%(levelname)s msg="%(message)s" logger=%(name)s',
    )


def main(argv: list[str] | None = None) -> int:
    try:
        c = cfg.load(argv)
    except cfg.ConfigError as e:
        print(f"dockyardd: {e}", file=sys.stderr)
        return 1
    setup_logging(c.log_level)
    lock_fd: Any = None
    try:
        lock_fd = lock_data_root(c.data_root)
        write_pidfile(c.pidfile_path)
        asyncio.run(serve(c))
    except (cfg.ConfigError, DataRootLocked) as e:
        log.error("%s", e)
        return 1
    finally:
        if lock_fd is not None:
            try:
                os.unlink(c.pidfile_path)
            except FileNotFoundError:
                pass
            os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
