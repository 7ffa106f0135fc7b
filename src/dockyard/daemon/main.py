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
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .. import errors
from ..api.app import build_app
from ..api.system import standard_headers
from ..cri.listener import CriSocket
from ..cri.streaming import EngineRuntime, StreamServer
from ..engine.engine import Engine
from ..httpd import unixsock
from ..httpd.server import HTTPServer
from ..runtime import cgroupdriver
from ..util.atomic import write_atomic
from . import activation, sdnotify
from . import config as cfg
from .tcp import TCPListener

log = logging.getLogger("dockyard.daemon")

# Logged on every start that serves plain tcp:// (dockerd's wording for 2375, one log line each).
INSECURE_TCP_WARNING = (
    "Binding to IP address without --tlsverify is insecure and gives root access on this machine to "
    "everyone who has access to your network. host=%s",
    "Binding to an IP address, even on localhost, can also give access to scripts run in a browser. "
    "Be safe out there! host=%s",
    "[SECURITY WARNING]: API is accessible on %s without encryption. Anyone who reaches this port can "
    "run any container, mount the host's root filesystem and take over this machine. Use --tlsverify "
    "with certificates (`dockyard certs create`), or a unix socket only.",
)
TLS_NO_VERIFY_WARNING = (
    "Binding to IP address without --tlsverify: %s is encrypted but does not check clients' "
    "certificates, so anyone who reaches it has root access on this machine")


# Shutdown: in-flight requests get REQUEST_GRACE seconds to finish before they are
# cancelled; engine work still running in threads then gets WORK_GRACE seconds,
# after which the process exits without it. Some requests wait forever by design
# (`docker stop -t -1`, `wait`, `logs -f`); none may hold the data root past this.
REQUEST_GRACE = 2.0
WORK_GRACE = 5.0
# The engine's own close (watchers stopped; every record is already on disk) is bounded too.
ENGINE_CLOSE_GRACE = 10.0


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
    write_atomic(path, str(os.getpid()), durable=False)


def split_tcp_host(host: str, default_port: int) -> tuple[str, int]:
    """(address, port) of ``tcp://ADDR:PORT``; as dockerd, a missing address is
    localhost and a missing port 2376 with TLS, 2375 without."""
    addr = host[len("tcp://"):].rstrip("/")
    if addr.startswith("["):
        hostpart, _, rest = addr[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif addr.count(":") == 1:
        hostpart, _, port = addr.partition(":")
    elif addr.count(":") > 1:
        raise cfg.ConfigError(f"invalid host {host!r}: an IPv6 address goes in brackets, tcp://[ADDR]:PORT")
    else:
        hostpart, port = addr, ""
    if port and not port.isdigit():
        raise cfg.ConfigError(f"invalid host {host!r}: invalid port {port!r}")
    return hostpart or "127.0.0.1", int(port) if port else default_port


@dataclass
class Endpoint:
    """One -H host, checked: a unix socket path, or a TCP address and its TLS context (None: plain)."""

    host: str
    path: str = ""
    address: tuple[str, int] = ("", 0)
    tls: ssl.SSLContext | None = None
    sock: socket.socket | None = None  # passed by socket activation (fd://), served as is


def plan_endpoints(c: cfg.DaemonConfig) -> list[Endpoint]:
    """Every -H host parsed, its socket checked free and its TLS files read, before anything is made:
    a host that cannot be served stops the daemon before it touches the machine."""
    endpoints: list[Endpoint] = []
    ctx: ssl.SSLContext | None = None
    activated = activation.select(c.hosts, activation.passed_sockets(any(h.startswith("fd://") for h in c.hosts)))
    if any(host.startswith("tcp://") for host in c.hosts) or \
            any(a.kind == "tcp" for passed in activated.values() for a in passed):
        from . import tls  # cryptography costs ~15 MiB of RSS: loaded only by a daemon serving TCP
        ctx = tls.server_context(c)
    for host in c.hosts:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            if _socket_in_use(path):
                raise cfg.ConfigError(f"socket {path} is in use by another process")
            endpoints.append(Endpoint(host, path=path))
        elif host.startswith("tcp://"):
            if ctx is None and not c.allow_insecure_tcp:
                raise cfg.ConfigError(f"refusing to serve {host} without TLS: pass --tlsverify (or, knowing "
                                      "that it gives root to the network, --allow-insecure-tcp)")
            endpoints.append(Endpoint(host, address=split_tcp_host(host, 2376 if ctx else 2375), tls=ctx))
        elif host.startswith("fd://"):
            for a in activated[host]:
                if a.kind == "tcp" and ctx is None and not c.allow_insecure_tcp:
                    raise cfg.ConfigError(f"refusing to serve {host}: {a.describe()} is TCP, without TLS: pass "
                                          "--tlsverify (or, knowing that it gives root to the network, "
                                          "--allow-insecure-tcp)")
                endpoints.append(Endpoint(f"{host} {a.describe()}", sock=a.sock,
                                          tls=ctx if a.kind == "tcp" else None))
        else:
            raise cfg.ConfigError(f"unsupported host {host}")
    return endpoints


def _socket_in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(path)
        return True
    except OSError:  # none there, or a stale one that nobody answers
        return False
    finally:
        probe.close()


Handle = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def bind(ep: Endpoint, handle: Handle, c: cfg.DaemonConfig) -> asyncio.AbstractServer | TCPListener:
    """The endpoint's socket, listening but not yet served (clients wait in its backlog until
    ``start_serving``)."""
    if ep.sock is not None and ep.sock.family == socket.AF_UNIX:
        # systemd made it, with the unit's mode and group; it stays when the daemon stops
        return await asyncio.start_unix_server(handle, sock=ep.sock, limit=2**20, start_serving=False)
    if ep.path:
        os.makedirs(os.path.dirname(ep.path) or ".", exist_ok=True)
        if os.path.lexists(ep.path) and not _socket_in_use(ep.path):
            os.unlink(ep.path)
        srv = await asyncio.start_unix_server(handle, sock=unixsock.listening(ep.path), limit=2**20,
                                              start_serving=False)
        os.chmod(ep.path, 0o660)
        try:
            os.chown(ep.path, 0, grp.getgrnam(c.group).gr_gid)
        except KeyError:
            pass
        return srv
    if ep.tls is None:
        for line in INSECURE_TCP_WARNING:
            log.warning(line, ep.host)
    elif not c.tlsverify:
        log.warning(TLS_NO_VERIFY_WARNING, ep.host)
    listener = TCPListener(handle, ep.tls)
    if ep.sock is not None:
        ep.sock.setblocking(False)
        listener.sockets.append(ep.sock)
        return listener
    try:
        await listener.bind(*ep.address)
    except OSError as e:
        raise cfg.ConfigError(f"failed to listen on {ep.host}: {e.strerror or e}") from None
    return listener


async def serve(c: cfg.DaemonConfig, endpoints: list[Endpoint], executor: concurrent.futures.Executor,
                notifier: sdnotify.Notifier | None = None) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(executor)
    server: HTTPServer | None = None
    engine: Engine | None = None
    cri = CriSocket(c.cri_socket_path) if c.cri_socket_path else None
    # the URLs of the CRI's Exec, Attach and PortForward point here
    streams = StreamServer(c.cri_stream_address, idle_timeout=c.cri_stream_idle_timeout) if cri is not None else None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert server is not None  # nothing is served before it exists
        await server.handle(reader, writer)

    listeners: list[asyncio.AbstractServer | TCPListener] = []
    made: list[str] = []  # unix sockets of ours, removed on the way out
    # from the start: a SIGTERM while the engine restores its state is acted on once it
    # has, instead of killing the process half way
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # sockets first, as dockerd does: a port in use stops the daemon before the
        # engine makes bridges and iptables rules
        for ep in endpoints:
            listeners.append(await bind(ep, handle, c))
            if ep.path:
                made.append(ep.path)
        if cri is not None:
            if _socket_in_use(cri.path):
                raise cfg.ConfigError(f"CRI socket {cri.path} is in use by another process")
            await cri.bind()
        if streams is not None:
            try:
                await streams.bind()
            except errors.Unavailable as e:
                raise cfg.ConfigError(str(e)) from None
        engine = await asyncio.to_thread(Engine, c)
        server = HTTPServer(build_app(engine), standard_headers)
        if cri is not None and streams is not None:
            await streams.serve(EngineRuntime(engine))
            await cri.serve(engine, streams)
        for ep, srv in zip(endpoints, listeners):
            if isinstance(srv, TCPListener):
                srv.serve()
            else:
                await srv.start_serving()
            log.info("API listen on %s", ep.host)
        log.info("Daemon has completed initialization")
        if notifier is not None:
            notifier.ready()
            watchdog = asyncio.create_task(notifier.watchdog())
        await stop.wait()
        log.info("Processing signal, shutting down")
        if notifier is not None:
            notifier.stopping()
            watchdog.cancel()
    finally:
        for srv in listeners:
            srv.close()
        if server is not None:
            await server.close_connections(REQUEST_GRACE)
        if cri is not None:
            await cri.close(REQUEST_GRACE)
        if streams is not None:
            await streams.close(REQUEST_GRACE)
        if engine is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(engine.close), ENGINE_CLOSE_GRACE)
            except asyncio.TimeoutError:
                log.error("the engine did not close within %.0f s; leaving it", ENGINE_CLOSE_GRACE)
        for path in made:
            try:
                os.unlink(path)
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
    notifier = sdnotify.from_environment()
    cgroupdriver.use(c.cgroup_driver)
    lock_fd: Any = None
    # Engine calls run in threads; enough of them that concurrent `docker run`s
    # do not queue behind each other.
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="engine")
    code = 0
    # Not asyncio.run: it joins the executor's threads at the end, and one of them may
    # wait forever (a stop without timeout, a wait); see finish_work. The loop stays
    # open until then, so that threads finishing meanwhile can still hand it their results.
    loop = asyncio.new_event_loop()
    try:
        endpoints = plan_endpoints(c)
        lock_fd = lock_data_root(c.data_root)
        write_pidfile(c.pidfile_path)
        loop.run_until_complete(serve(c, endpoints, executor, notifier))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except (cfg.ConfigError, DataRootLocked) as e:
        log.error("%s", e)
        code = 1
    except Exception:
        log.exception("the daemon failed")
        code = 1
    finally:
        if lock_fd is not None:
            try:
                os.unlink(c.pidfile_path)
            except FileNotFoundError:
                pass
    if not finish_work(executor, WORK_GRACE):
        # The engine has closed and saved its state; what is left is requests waiting
        # without end, whose threads would keep the process (and the data-root lock)
        # alive. Leave without them: their records are written atomically, so a
        # write they were in the middle of is either whole or absent.
        logging.shutdown()
        os._exit(code)
    loop.close()
    if lock_fd is not None:
        os.close(lock_fd)
    return code


def finish_work(executor: concurrent.futures.ThreadPoolExecutor, grace: float) -> bool:
    """Let engine threads still running finish within ``grace`` seconds; whether they all did."""
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in busy if t.is_alive()]
    if left:
        log.warning("leaving %d engine thread(s) still at work after %.0f s: %s", len(left), grace, ", ".join(left))
    return not left


if __name__ == "__main__":
    sys.exit(main())
