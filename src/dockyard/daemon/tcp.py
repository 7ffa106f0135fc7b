"""TCP listeners for the API: bounded, TLS with a deadline, and half-close safe.

Why not ``asyncio.start_server(ssl=...)``:
- a client that speaks plain HTTP to the TLS port should be told so at once
  (Go's net/http answers ``Client sent an HTTP request to an HTTPS server.``,
  which the docker CLI prints), so the first bytes are peeked before the
  handshake;
- the number of connections per listener is capped, counting those still in
  their handshake, by not accepting while the cap is reached (Go's
  netutil.LimitListener does the same); the kernel's backlog holds the rest;
- the docker CLI ends stdin of a hijacked attach/exec with ``CloseWrite``,
  which on a tls.Conn sends close_notify and keeps reading. asyncio's SSL
  protocol takes an incoming close_notify (or a bare TCP FIN) as the end of
  the whole connection and drops everything written after it, so the output
  of ``echo hi | docker run -i busybox cat`` would be lost. The protocol
  below turns both into end-of-input only; the connection ends when the
  server closes it. It also sends the alert of a failed handshake, which
  asyncio drops, so that a refused client can say why (``remote error: tls:
  certificate required``), as it can with dockerd.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from asyncio import sslproto
from typing import Awaitable, Callable

log = logging.getLogger("dockyard.api")

# Concurrent connections per tcp:// listener, hijacked streams and `docker
# events` followers included. Each costs a socket and a little memory; the
# daemon's RLIMIT_NOFILE here is 20000, and several listeners plus containers'
# files must fit beside them.
MAX_CONNECTIONS = 1024
# Concurrent connections from one source address; those past it are closed as
# soon as accepted, so that one host cannot take every slot above (dockerd has
# no such bound, nor a flag for one). A docker-py pool holds 10 at most, a CLI
# one per command; 128 leaves room for busy hosts behind one NAT address.
MAX_PER_SOURCE = 128
# From accept to a finished TLS handshake; covers clients that connect and say nothing.
HANDSHAKE_TIMEOUT = 10.0
# TCP keepalive as Go's listeners set it: a peer that vanished without a FIN is
# noticed after about 15 s + 9 x 15 s even while a hijacked stream is idle.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 15, 15, 9
STREAM_LIMIT = 2**20

# What Go's net/http writes when the first record header looks like HTTP.
HTTP_ON_TLS_REPLY = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO", b"DELET", b"PATCH", b"CONNE")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

_WRAPPED = sslproto.SSLProtocolState.WRAPPED


class ServerTLSProtocol(sslproto.SSLProtocol):
    """SSLProtocol for which the peer's close_notify or TCP FIN only ends input,
    and which tells a refused client why.

    Overrides private methods of CPython 3.11's asyncio.sslproto (checked below
    at import, so a Python that changed them fails loudly, not silently).
    """

    _read_closed = False
    _in_read = False

    def _do_read(self) -> None:
        if self._read_closed and self._state == _WRAPPED:
            return  # nothing can follow the peer's close_notify or FIN
        self._in_read = True
        try:
            super()._do_read()
        finally:
            self._in_read = False

    def _call_eof_received(self) -> None:
        if self._state == _WRAPPED:
            self._read_closed = True
        super()._call_eof_received()

    def _start_shutdown(self) -> None:
        # Called by _do_read right after it delivered the peer's close_notify as
        # EOF: skip that one; our own close() still shuts down (and since the
        # peer's close_notify is in, the unwrap completes at once).
        if self._in_read and self._read_closed and self._state == _WRAPPED:
            return
        super()._start_shutdown()

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        # On a failed handshake OpenSSL has put its alert (certificate required,
        # unknown CA, ...) in the outgoing buffer; the stdlib aborts without
        # sending it and the client sees a bare EOF. Send it first, as Go's
        # server does, so that the client can say what was wrong.
        if handshake_exc is not None and self._transport is not None:
            alert = self._outgoing.read()
            if alert:
                self._transport.write(alert)
        super()._on_handshake_complete(handshake_exc)

    def eof_received(self) -> bool | None:
        if self._state == _WRAPPED and not self._app_reading_paused:
            # A bare FIN (a client that shut its socket's write side under TLS):
            # end of input; no close_notify can be exchanged any more, so our
            # close() will just close.
            self._read_closed = True
            self._eof_received = True
            self._call_eof_received()
            return True  # keep the socket open for what we still write
        return super().eof_received()


for _name in ("_do_read", "_call_eof_received", "_start_shutdown", "eof_received", "_on_handshake_complete",
              "_app_reading_paused", "_eof_received", "_state", "_outgoing", "_transport"):
    if not hasattr(sslproto.SSLProtocol, _name) and _name not in sslproto.SSLProtocol.__init__.__code__.co_names:
        raise ImportError(f"asyncio.sslproto.SSLProtocol has no {_name}: ServerTLSProtocol needs updating")


def handshake_failure(exc: BaseException) -> str:
    """Why a handshake failed, in words, for the log."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "handshake timed out"
    return str(exc) or type(exc).__name__


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)


def _reply_and_close(sock: socket.socket, data: bytes) -> None:
    """Answer a client that is not speaking TLS, so that it reads the answer rather
    than a reset: take in what it sent (closing with unread input resets the
    connection), send, then FIN."""
    try:
        for _ in range(16):
            if not sock.recv(65536):
                break
    except BlockingIOError:
        pass
    except OSError:
        return
    try:
        sock.send(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _peer(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)


class TCPListener:
    """Accepts on one host:port (every address it resolves to) and runs ``handler`` per connection."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None, *,
                 max_connections: int = MAX_CONNECTIONS, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 max_per_source: int = MAX_PER_SOURCE) -> None:
        self._handler = handler
        self._ctx = ssl_context
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self._handshake_timeout = handshake_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._open = 0
        self._by_source: collections.Counter[str] = collections.Counter()
        self._refusing: set[str] = set()  # sources told about in the log, until one of theirs closes
        self.sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._handshaking: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        return self._open

    async def start(self, host: str, port: int, backlog: int = 128) -> None:
        await self.bind(host, port, backlog)
        self.serve()

    async def bind(self, host: str, port: int, backlog: int = 128) -> None:
        """Listen on every address ``host`` resolves to; connections wait in the backlog until ``serve``."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        try:
            for family, kind, proto, _, addr in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self.sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(backlog)
                sock.setblocking(False)
        except OSError:
            self.close()
            raise

    def serve(self) -> None:
        self._accepting = [asyncio.create_task(self._accept_loop(s)) for s in self.sockets]

    def close(self) -> None:
        """Stop accepting and abandon handshakes in progress; served connections are the HTTP server's to end."""
        for task in self._accepting:
            task.cancel()
        for sock in self.sockets:
            sock.close()
        for task in list(self._handshaking):
            task.cancel()

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        full_logged = False
        while True:
            if self._slots.locked() and not full_logged:
                log.warning("%s: %d connections open, the limit; new ones wait in the backlog",
                            _peer(lsock.getsockname()), self.max_connections)
                full_logged = True
            await self._slots.acquire()
            try:
                conn, addr = await loop.sock_accept(lsock)
            except asyncio.CancelledError:
                self._slots.release()
                raise
            except OSError as e:
                # EMFILE and the like: back off instead of spinning
                self._slots.release()
                log.error("accept on %s: %s", _peer(lsock.getsockname()), e)
                await asyncio.sleep(0.5)
                continue
            full_logged = False
            source = addr[0] if isinstance(addr, tuple) else str(addr)
            if self._by_source[source] >= self.max_per_source:
                if source not in self._refusing:
                    self._refusing.add(source)
                    log.warning("%s has %d connections open, the limit per source address; closing its new ones",
                                source, self.max_per_source)
                conn.close()
                self._slots.release()
                continue
            self._by_source[source] += 1
            self._open += 1
            task = asyncio.create_task(self._connection(conn, _peer(addr), source))
            self._handshaking.add(task)
            task.add_done_callback(self._handshaking.discard)

    async def _connection(self, sock: socket.socket, peer: str, source: str) -> None:
        try:
            try:
                _tune(sock)
                opened = await (self._open_tls(sock, peer) if self._ctx else self._open_plain(sock))
            except OSError as e:
                log.debug("connection from %s: %s", peer, e)
                opened = None
            except BaseException:  # cancelled: the listener is closing
                sock.close()
                raise
            if opened is None:
                # a transport that was made has been aborted; the socket is ours to close
                sock.close()
                return
            # from here the transport owns the socket and the HTTP server this task
            self._handshaking.discard(asyncio.current_task())  # type: ignore[arg-type]
            await self._handler(*opened)
        finally:
            self._open -= 1
            self._slots.release()
            self._by_source[source] -= 1
            if not self._by_source[source]:
                del self._by_source[source]
            self._refusing.discard(source)

    async def _open_plain(self, sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    async def _open_tls(self, sock: socket.socket, peer: str
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        assert self._ctx is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        opened: asyncio.Future[asyncio.StreamWriter] = loop.create_future()
        protocol = asyncio.StreamReaderProtocol(reader, lambda _r, w: opened.set_result(w))
        handshake: asyncio.Future[None] = loop.create_future()
        tls = ServerTLSProtocol(loop, protocol, self._ctx, handshake, server_side=True,
                                   ssl_handshake_timeout=self._handshake_timeout)
        transport: asyncio.BaseTransport | None = None
        try:
            async with asyncio.timeout(self._handshake_timeout):
                first = await self._peek(sock)
                if not first:
                    return None
                if first[:5] in _HTTP_STARTS:
                    log.info("http: TLS handshake error from %s: client sent an HTTP request to an HTTPS server",
                             peer)
                    _reply_and_close(sock, HTTP_ON_TLS_REPLY)
                    return None
                transport, _ = await loop.connect_accepted_socket(lambda: tls, sock)
                await handshake
        except (ssl.SSLError, OSError, TimeoutError) as e:
            log.info("http: TLS handshake error from %s: %s", peer, handshake_failure(e))
            if transport is not None:
                transport.abort()
            return None
        except BaseException:
            if transport is not None:
                transport.abort()
            raise
        return reader, opened.result()

    @staticmethod
    async def _peek(sock: socket.socket) -> bytes:
        """The first bytes the client sent, left in the socket for the handshake."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(sock.fileno(), lambda: readable.done() or readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(sock.fileno())
        return sock.recv(8, socket.MSG_PEEK)
