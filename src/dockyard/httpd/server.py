"""HTTP/1.1 for the Engine API on asyncio streams, with h11 as the protocol engine.

Why h11 rather than aiohttp: attach and exec hijack the connection (``101
UPGRADED``) and then treat it as a raw duplex socket whose read side may be
half-closed by the client while output keeps flowing. On plain asyncio
streams that is the natural behaviour; h11 only parses and frames HTTP and
hands back the bytes that follow the upgrade, so no framework internals are
patched (aiohttp would need its parser swapped and its EOF handling
overridden).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import h11

from .. import errors
from . import jsonsyntax

log = logging.getLogger("dockyard.api")

READ_CHUNK = 256 * 1024
# Body reads take whatever the socket has buffered, up to this: fewer, larger
# hand-offs to h11 while an upload streams in.
BODY_READ = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
# How long a connection may sit between requests, and the most a request head
# may take to arrive, before the connection is closed; bounds what idle, slow
# or half-open clients can hold (dockerd: ReadHeaderTimeout, 5 minutes).
IDLE_TIMEOUT = 300.0
_UNREAD = object()
# Left over from a body the handler did not read, at most this is read away so
# that the connection can carry the next request; past it the connection is
# closed instead (Go's net/http: maxPostHandlerReadBytes, 256 KiB).
MAX_UNREAD_BODY = 256 * 1024
# What a client may send while its answer streams that is kept as its next
# request; what comes past it is read and dropped (the read side is still
# watched, to see the client go) and the connection closes after the stream.
MAX_PIPELINED = MAX_HEADER_BYTES


class Request:
    """One HTTP request; its body is read lazily from the connection."""

    def __init__(self, conn: "_Connection", event: h11.Request) -> None:
        self._conn = conn
        self.method = event.method.decode("ascii")
        target = event.target.decode("latin-1")
        raw_path, _, raw_query = target.partition("?")
        self.raw_path = raw_path
        self.path = urllib.parse.unquote(raw_path)
        self.query: dict[str, list[str]] = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1").lower()
            val = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        self.headers = headers
        self.http_version = event.http_version.decode()
        self.params: dict[str, str] = {}
        self.api_version = ""
        self._body_done = False
        # set while no task is inside ``stream()``: a handler's read-ahead may still be taking
        # the body when its answer starts streaming, and what it takes must not be taken from it
        self._unread = asyncio.Event()
        self._unread.set()
        # the body as api/validation.py read and checked it for the router (None: it was empty)
        self.validated_json: Any = _UNREAD
        # a client that asked for 100-continue and was not given it will not send its body:
        # the connection cannot carry another request after the answer
        self.expects_continue = conn.h11.they_are_waiting_for_100_continue

    # -- query helpers ---------------------------------------------------------
    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def qlist(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def qbool(self, name: str, default: bool = False) -> bool:
        value = self.q(name)
        if value is None:
            return default
        # dockerd's httputils.BoolValue
        return value.strip().lower() not in ("", "0", "no", "false", "none")

    def qint(self, name: str, default: int | None = None) -> int | None:
        value = self.q(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise errors.InvalidParameter(f"invalid value for {name}: {value!r}") from None

    def qjson(self, name: str, default: Any = None) -> Any:
        value = self.q(name)
        if not value:
            return default
        try:
            return json.loads(value)
        except ValueError as e:
            raise errors.InvalidParameter(f"invalid {name} parameter: {e}") from None

    @property
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.headers.get("connection", "").lower() and bool(self.headers.get("upgrade"))

    # -- body ------------------------------------------------------------------
    async def stream(self) -> AsyncIterator[bytes | bytearray]:
        """Yield the body in chunks as it arrives, as h11 frames them (not copied again here).

        A body cut short (the client went away, or broken chunked framing)
        raises ``InvalidParameter``: a consumer never takes a short body as whole.
        """
        conn = self._conn
        parser = conn.h11
        if not self._body_done and parser.they_are_waiting_for_100_continue:
            # as Go's net/http does once a handler reads the body (curl waits a second for it otherwise)
            await conn.send(h11.InformationalResponse(status_code=100, headers=[]))
            self.expects_continue = False
        self._unread.clear()
        try:
            while not self._body_done:
                try:
                    event = parser.next_event()
                except h11.RemoteProtocolError as e:
                    self._body_done = True
                    raise errors.InvalidParameter(
                        "unexpected EOF in request body" if conn.eof else f"invalid request body: {e}") from None
                if event is h11.NEED_DATA:
                    await conn.receive(BODY_READ)
                elif type(event) is h11.Data:
                    yield event.data
                else:
                    self._body_done = True
                    if isinstance(event, h11.ConnectionClosed):
                        raise errors.InvalidParameter("unexpected EOF in request body")
        finally:
            self._unread.set()

    async def body(self) -> bytes:
        return b"".join([chunk async for chunk in self.stream()])

    async def json(self, default: Any = None) -> Any:
        if self.validated_json is not _UNREAD:
            return default if self.validated_json is None else self.validated_json
        data = await self.body()
        if not data.strip():
            return default
        try:
            return json.loads(data, parse_constant=jsonsyntax.reject_constant)
        except (ValueError, RecursionError) as e:
            raise errors.InvalidParameter(jsonsyntax.go_error(data) or f"invalid JSON: {e}") from None

    async def drain(self) -> None:
        async for _ in self.stream():
            pass

    async def body_released(self) -> None:
        """Return once no task is reading the body (a handler's read-ahead may outlive its answer's start)."""
        await self._unread.wait()

    async def discard(self, limit: int = MAX_UNREAD_BODY) -> bool:
        """Read away what is left of the body, at most ``limit`` bytes; whether it ended.

        False means the connection cannot carry another request: the body is
        longer than the bound, was cut short, or will never come because the
        client waits for a 100 Continue it was not given.
        """
        if self._body_done:
            return True
        if self.expects_continue:
            return False
        left = limit
        try:
            async with contextlib.aclosing(self.stream()) as chunks:
                async for chunk in chunks:
                    left -= len(chunk)
                    if left < 0:
                        return False
        except errors.InvalidParameter:
            return False
        return True


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, (json.dumps(data) + "\n").encode(), "application/json", headers or [])


def empty_response(status: int = 204) -> Response:
    return Response(status, b"", None)


@dataclass
class StreamResponse:
    """A body produced over time (chunked): progress streams, logs, events."""

    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class RawStream:
    """A hijacked connection: a duplex byte stream after ``101 UPGRADED``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, leftover: bytes) -> None:
        self._reader = reader
        self._leftover = leftover
        self.writer = writer
        self.last_traffic = time.monotonic()  # when bytes last came in or went out

    async def read(self, n: int = READ_CHUNK) -> bytes:
        """Return the next bytes from the client; b"" once it half-closed."""
        if self._leftover:
            data, self._leftover = self._leftover[:n], self._leftover[n:]
            return data
        try:
            data = await self._reader.read(n)
        except (ConnectionError, OSError):
            return b""
        self.last_traffic = time.monotonic()
        return data

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.last_traffic = time.monotonic()  # once taken: a write the client does not read is no traffic

    def close(self) -> None:
        self.writer.close()

    async def close_when_idle(self, timeout: float) -> None:
        """Drop the connection once nothing went either way for ``timeout`` seconds. Aborted, not
        closed: what is still queued for a client that stopped reading would otherwise hold it; the
        handler's reads then see the end and its writes fail."""
        while (left := self.last_traffic + timeout - time.monotonic()) > 0:
            await asyncio.sleep(left)
        log.info("closing a hijacked connection idle for %gs", timeout)
        self.writer.transport.abort()


@dataclass
class HijackResponse:
    """Take over the connection; ``handler`` owns it until it returns."""

    handler: Callable[[RawStream], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"
    # the whole answer head, for a protocol with its own (a WebSocket's 101 Switching Protocols)
    head: bytes | None = None
    # seconds without traffic either way after which the connection is dropped (None: never)
    idle_timeout: float | None = None


@dataclass
class HijackFailure:
    """A hijacking request that failed before its stream began (attach to a missing container):
    dockerd has taken the connection over already, so it writes a bare status line, the raw-stream
    type and the message as text, then closes."""

    status: int
    message: str


AnyResponse = Response | StreamResponse | HijackResponse | HijackFailure
AppHandler = Callable[[Request], Awaitable[AnyResponse]]
ExtraHeaders = Callable[[], list[tuple[str, str]]]


class _Connection:
    """One client connection: reads requests, writes responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 app: AppHandler, extra_headers: ExtraHeaders) -> None:
        self.reader = reader
        self.writer = writer
        self.app = app
        self.extra_headers = extra_headers
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.eof = False  # the client closed its side
        # False once bytes of the client's were dropped or left unread: no further request can be parsed
        self.reusable = True
        # One reader of the socket at a time (a StreamReader raises on a second): a body
        # read-ahead task and the server's own reads can otherwise meet.
        self._reading = asyncio.Lock()

    async def _read(self, n: int) -> bytes:
        async with self._reading:
            return await self.reader.read(n)

    async def receive(self, n: int = READ_CHUNK) -> None:
        """Read from the socket into h11 (b"" tells it the client closed its side)."""
        data = await self._read(n)
        if not data:
            self.eof = True
        self.h11.receive_data(data)

    async def next_event(self, timeout: float) -> Any:
        event = self.h11.next_event()
        if event is not h11.NEED_DATA:  # pipelined or already buffered: no timer to arm
            return event
        # ``timeout`` bounds the wait for the whole event, not each read: a client
        # trickling a header a byte at a time must not hold the connection forever.
        async with asyncio.timeout(timeout):
            while event is h11.NEED_DATA:
                await self.receive()
                event = self.h11.next_event()
            return event

    async def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def _headers(self, content_type: str | None, extra: list[tuple[str, str]],
                 length: int | None = None) -> list[tuple[str, str]]:
        headers = list(self.extra_headers())
        if content_type:
            headers.append(("Content-Type", content_type))
        headers.extend(extra)
        if length is not None:
            headers.append(("Content-Length", str(length)))
        return headers

    async def serve(self) -> None:
        try:
            while True:
                try:
                    event = await self.next_event(IDLE_TIMEOUT)
                except asyncio.TimeoutError:
                    return
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if not isinstance(event, h11.Request):
                    return
                request = Request(self, event)
                started = time.monotonic()
                response = await self.app(request)
                if isinstance(response, HijackResponse):
                    if not await self._finish_body(request):
                        return
                    await self._hijack(request, response)
                    return
                if isinstance(response, HijackFailure):
                    await self._finish_body(request)
                    self.writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                                      b"\r\n%s\r\n" % (response.status, _reason(response.status),
                                                       response.message.encode()))
                    await self.writer.drain()
                    return
                status = await self._respond(request, response)
                log.debug("%s %s -> %s (%.1f ms)", request.method, request.raw_path, status,
                          (time.monotonic() - started) * 1000)
                if not self.reusable or not await self._finish_body(request):
                    return
                if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is not h11.DONE:
                    return
                self.h11.start_next_cycle()
        except h11.RemoteProtocolError as e:
            if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                body = (json.dumps({"message": f"bad request: {e}"}) + "\n").encode()
                try:
                    await self.send(h11.Response(status_code=400, headers=self._headers(
                        "application/json", [("Connection", "close")], len(body))))
                    await self.send(h11.Data(data=body))
                    await self.send(h11.EndOfMessage())
                except Exception:
                    pass
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass
        except errors.InvalidParameter:  # a body left unread by the handler was cut short: nothing to answer
            pass
        finally:
            try:
                self.writer.close()
            except Exception:
                pass

    async def _finish_body(self, request: Request) -> bool:
        """Read away a body the handler left, within bounds; whether the connection can go on."""
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                return await request.discard()
        except asyncio.TimeoutError:
            return False

    async def _respond(self, request: Request, response: Response | StreamResponse) -> int:
        head = request.method == "HEAD"
        if isinstance(response, Response):
            body_allowed = response.status not in (204, 304) and not (100 <= response.status < 200)
            length = len(response.body) if body_allowed else None
            events: list[Any] = [h11.Response(status_code=response.status, reason=_reason(response.status),
                                              headers=self._headers(response.content_type, response.headers,
                                                                    length))]
            if response.body and body_allowed and not head:
                events.append(h11.Data(data=response.body))
            events.append(h11.EndOfMessage())
            # one write for head and body: one TLS record and one send() instead of two
            # (a quarter of the time of a small keep-alive request over TLS)
            self.writer.write(b"".join(self.h11.send(e) or b"" for e in events))
            await self.writer.drain()
            return response.status
        try:
            await self.send(h11.Response(status_code=response.status, reason=_reason(response.status),
                                         headers=self._headers(response.content_type, response.headers)))
            if head:
                await self.send(h11.EndOfMessage())
            else:
                await self._stream_body(request, response.chunks)
        finally:
            # every stream is closed, iterated or not: closing is what stops the work behind it
            aclose = getattr(response.chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    pass
        return response.status

    async def _watch(self, request: Request) -> None:
        """Own the read side while an answer streams; return once the client has gone.

        A streaming client (``docker events``, ``logs -f``) often leaves by just
        closing its socket while the stream is idle, so the read side is read
        all along: first what is left of the request body, then what the
        client sends next. Memory stays bounded whatever it sends: up to
        ``MAX_PIPELINED`` bytes are kept as its next request, the rest is
        dropped and the connection closes after the stream.
        """
        await request.body_released()
        if not await request.discard():
            self.reusable = False
            if self.eof:
                return
        kept = 0
        while True:
            try:
                data = await self._read(READ_CHUNK)
            except (ConnectionError, OSError):
                return
            if not data:
                self.eof = True
                return
            kept += len(data)
            if self.reusable and kept <= MAX_PIPELINED:
                self.h11.receive_data(data)
            else:
                self.reusable = False

    async def _stream_body(self, request: Request, chunks: AsyncIterator[bytes]) -> None:
        """Send chunks until the iterator ends or the client goes away (``ConnectionResetError``)."""
        watcher = asyncio.create_task(self._watch(request))
        iterator = chunks.__aiter__()
        nxt: asyncio.Future[bytes] | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(iterator.__anext__())
                await asyncio.wait({nxt, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    raise ConnectionResetError("client went away")
                try:
                    chunk = nxt.result()
                except StopAsyncIteration:
                    break
                if chunk:
                    await self.send(h11.Data(data=chunk))
            await self.send(h11.EndOfMessage())
        finally:
            # Both tasks are cancelled *and awaited*: the connection goes on reading
            # only once the watcher has let go of the socket, and the iterator is
            # closed (by the caller) only once nothing runs inside it.
            pending = {t for t in (nxt, watcher) if t is not None and not t.done()}
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            if watcher.done() and not watcher.cancelled():
                watcher.exception()  # retrieved: nothing is left to report it

    async def _hijack(self, request: Request, response: HijackResponse) -> None:
        if response.head is not None:
            head = response.head
        elif request.wants_upgrade:
            head = (b"HTTP/1.1 101 UPGRADED\r\n"
                    b"Content-Type: " + response.content_type.encode() + b"\r\n"
                    b"Connection: Upgrade\r\nUpgrade: tcp\r\n")
        else:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: " + response.content_type.encode() + b"\r\n"
        if response.head is None:
            for name, value in self.extra_headers():
                head += f"{name}: {value}\r\n".encode("latin-1")
            head += b"\r\n"
        self.writer.write(head)
        await self.writer.drain()
        leftover, _closed = self.h11.trailing_data
        stream = RawStream(self.reader, self.writer, bytes(leftover))
        if not response.idle_timeout:
            await response.handler(stream)
            return
        watch = asyncio.create_task(stream.close_when_idle(response.idle_timeout))
        try:
            await response.handler(stream)
        finally:
            watch.cancel()


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class HTTPServer:
    """Serves ``app`` on any number of asyncio listeners."""

    def __init__(self, app: AppHandler, extra_headers: ExtraHeaders) -> None:
        self.app = app
        self.extra_headers = extra_headers
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await _Connection(reader, writer, self.app, self.extra_headers).serve()
        except asyncio.CancelledError:
            # close_connections at shutdown; ending quietly, since asyncio's stream server
            # would log the cancellation of its connection callback as an error
            pass
        finally:
            self._tasks.discard(task)

    async def close_connections(self, grace: float = 2.0) -> None:
        """Give in-flight requests ``grace`` seconds, then cancel them and let them unwind
        (as long again at most: a handler that ignores cancellation is left behind)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)
