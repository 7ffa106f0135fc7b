"""The userland proxy: what reaches a published port's host socket is carried to the container.

Only traffic the kernel's DNAT cannot take comes here, as with dockerd's docker-proxy: the host's
own connections to 127.0.0.1 (DNAT out of a bridge with a loopback source needs
``route_localnet=1``, which lets containers reach the host's loopback services) and a container's
connections to its own network's gateway (hairpin). Everything else is DNAT'd before it would
reach the socket. The socket is the one the daemon bound to reserve the port.

TCP is spliced (``os.splice`` through a pipe: the bytes never enter Python, so the copy runs
without the GIL), one thread per direction. UDP keeps one socket per client towards the
container, dropped after 90 s idle as docker-proxy does. Both are bounded in what a client can make
the daemon hold: per port, and all ports together within a share of the daemon's descriptors (the
proxy lives in the daemon, unlike docker-proxy, so a flood of connections must not starve the API).
"""

from __future__ import annotations

import abc
import errno
import fcntl
import logging
import os
import resource
import select
import socket
import threading
import time

log = logging.getLogger("dockyard.network")

MAX_CONNECTIONS = 512  # per published TCP port; each is two threads and six descriptors
MAX_FLOWS = 1024  # per published UDP port; each is a socket
# TCP connections and UDP flows of all ports together: at most about 3/8 of the descriptors
_SLOTS = threading.BoundedSemaphore(max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 16))
UDP_IDLE = 90.0  # docker-proxy's UDPConnTrackTimeout
CONNECT_TIMEOUT = 10.0
CHUNK = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_DATAGRAM = 65535


class Proxy(abc.ABC):
    """One published port; ``close`` stops it and closes its socket before returning."""

    def __init__(self, sock: socket.socket, target: tuple[str, int]) -> None:
        self.sock = sock
        self.target = target
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._close_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                         name=f"proxy-{sock.getsockname()[1]}")

    def start(self) -> "Proxy":
        self._thread.start()
        return self

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return  # twice would close descriptor numbers that may belong to others by now
            self._closed = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        self.sock.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _run(self) -> None:
        try:
            self._serve()
        except Exception:
            log.exception("userland proxy for %s:%d", *self.target)

    @abc.abstractmethod
    def _serve(self) -> None:
        """Until the wake pipe is written."""


class TcpProxy(Proxy):
    def __init__(self, sock: socket.socket, target: tuple[str, int]) -> None:
        super().__init__(sock, target)
        self._lock = threading.Lock()
        self._active = 0
        self._open: set[socket.socket] = set()
        self._stopped = False

    def _serve(self) -> None:
        self.sock.setblocking(False)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        slots = _SLOTS  # every slot goes back to the semaphore it came from, whatever replaces the global
        try:
            while True:
                if any(fd == self._wake_r for fd, _ in poller.poll()):
                    return
                try:
                    client, _ = self.sock.accept()
                except OSError as e:  # gone between poll and accept, or out of descriptors or memory
                    if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        time.sleep(0.1)  # the pending connection stays readable: no busy loop meanwhile
                    continue
                with self._lock:
                    full = self._active >= MAX_CONNECTIONS or not slots.acquire(blocking=False)
                    if not full:
                        self._active += 1
                if full:
                    client.close()
                    continue
                client.setblocking(True)
                try:
                    threading.Thread(target=self._carry, args=(client, slots), daemon=True,
                                     name=f"proxy-conn-{self.target[1]}").start()
                except RuntimeError:  # no thread to be had: refused like a connection over the bound
                    with self._lock:
                        self._active -= 1
                        slots.release()
                    client.close()
        finally:
            with self._lock:
                self._stopped = True
                for s in self._open:
                    _shut(s)

    def _carry(self, client: socket.socket, slots: threading.BoundedSemaphore) -> None:
        upstream: socket.socket | None = None
        try:
            try:
                upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
            except OSError:
                return
            upstream.settimeout(None)
            with self._lock:
                if self._stopped:
                    return
                self._open.update((client, upstream))
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True,
                                    name=f"proxy-conn-{self.target[1]}")
            back.start()
            _pipe(client, upstream)
            back.join()
        finally:
            with self._lock:
                self._active -= 1
                slots.release()
                self._open.discard(client)
                if upstream is not None:
                    self._open.discard(upstream)
            client.close()
            if upstream is not None:
                upstream.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """One direction until its end of stream, then half-close; a failure ends both directions."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, CHUNK)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: the default 64 KiB works, in more calls
        while True:
            n = os.splice(src.fileno(), w, CHUNK, flags=os.SPLICE_F_MOVE)
            if n == 0:
                break
            while n:
                n -= os.splice(r, dst.fileno(), n, flags=os.SPLICE_F_MOVE)
        dst.shutdown(socket.SHUT_WR)
    except (OSError, ValueError):  # reset, or a socket closed under us (fileno -1)
        _shut(src)
        _shut(dst)
    finally:
        os.close(r)
        os.close(w)


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class UdpProxy(Proxy):
    def _serve(self) -> None:
        self.sock.setblocking(False)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        flows: dict[tuple[str, int], tuple[socket.socket, float]] = {}  # least recently used first
        slots = _SLOTS  # every slot goes back to the semaphore it came from, whatever replaces the global
        by_fd: dict[int, tuple[str, int]] = {}

        def drop(peer: tuple[str, int]) -> None:
            s, _ = flows.pop(peer)
            by_fd.pop(s.fileno(), None)
            poller.unregister(s)
            s.close()
            slots.release()

        def admit() -> bool:
            """A slot for a new flow; this port's least recently used flows give theirs up if need be."""
            if len(flows) >= MAX_FLOWS:
                drop(next(iter(flows)))
            while not slots.acquire(blocking=False):
                if not flows:
                    return False
                drop(next(iter(flows)))
            return True

        try:
            while True:
                events = poller.poll(1000 * min(UDP_IDLE, 30.0))
                now = time.monotonic()
                for fd, _ in events:
                    if fd == self._wake_r:
                        return
                    if fd == self.sock.fileno():
                        try:
                            data, peer = self.sock.recvfrom(_DATAGRAM)
                        except OSError:
                            continue
                        flow = flows.pop(peer, None)
                        if flow is None:
                            if not admit():
                                continue  # other ports hold every slot: UDP loses the datagram
                            try:
                                up = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET,
                                                   socket.SOCK_DGRAM)
                            except OSError:
                                slots.release()
                                continue
                            up.setblocking(False)
                            try:
                                up.connect(self.target)
                            except OSError:
                                up.close()
                                slots.release()
                                continue
                            poller.register(up, select.POLLIN)
                            by_fd[up.fileno()] = peer
                            flow = (up, now)
                        flows[peer] = (flow[0], now)
                        try:
                            flow[0].send(data)
                        except OSError:
                            pass  # nothing listening (yet): UDP loses it, as it would without us
                    elif fd in by_fd:
                        peer = by_fd[fd]
                        up, _ = flows.pop(peer)
                        flows[peer] = (up, now)
                        try:
                            self.sock.sendto(up.recv(_DATAGRAM), peer)
                        except OSError:
                            pass
                for peer, (_, used) in list(flows.items()):
                    if now - used <= UDP_IDLE:
                        break  # the rest were used later
                    drop(peer)
        finally:
            for peer in list(flows):
                drop(peer)


def start(proto: str, sock: socket.socket, target: tuple[str, int]) -> Proxy:
    return (UdpProxy if proto == "udp" else TcpProxy)(sock, target).start()
