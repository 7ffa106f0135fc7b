"""``GET /containers/{id}/attach/ws``: attach over a WebSocket, as dockerd serves it.

dockerd hands the container's streams to a WebSocket unmultiplexed: each piece of output
is one message (binary from API 1.28, text before), each message from the client is
stdin; the ``stdin``/``stdout``/``stderr`` query is honoured from API 1.42 (all three
before). ``logs=1`` replays the log first, ``stream=1`` then follows the live streams, and
the detach keys work as on a plain attach. The frame layer is wsproto's sans-IO
connection, driven over the hijacked socket by httpd/websocket.py (as the CRI's streaming server's);
the handshake is the one answer it needs.
"""

from __future__ import annotations

import asyncio

from .. import errors
from ..httpd.server import HijackResponse, RawStream, Request
from ..httpd.websocket import WebSocketStream, accept_head
from ..streams import attach as attachmod
from ..streams import logs as logstream
from ..streams.detach import keys_or_default
from ..streams.duplex import raw
from .backend import StdioBackend
from .router import Route, get, version_at_least

WS_VERSION = "13"


def _payloads(framed: bytes) -> list[bytes]:
    """The payloads of a run of whole multiplexed frames (as the log reader renders them)."""
    out = []
    view = memoryview(framed)
    while len(view) >= 8:
        size = int.from_bytes(view[4:8], "big")
        out.append(bytes(view[8:8 + size]))
        view = view[8 + size:]
    return out


def routes(backend: StdioBackend) -> list[Route]:
    async def attach_ws(request: Request) -> HijackResponse:
        c = await asyncio.to_thread(backend.container_stdio, request.params["name"])
        key = request.headers.get("sec-websocket-key", "")
        if request.headers.get("upgrade", "").lower() != "websocket" or not key:
            raise errors.InvalidParameter("not a websocket handshake: 'upgrade' header is not 'websocket'")
        if request.headers.get("sec-websocket-version", "") != WS_VERSION:
            raise errors.InvalidParameter(f"unsupported websocket version (wants {WS_VERSION})")
        keys = keys_or_default(request.q("detachKeys"))
        if version_at_least(request, "1.42"):
            want_stdin = request.qbool("stdin")
            stdout, stderr = request.qbool("stdout"), request.qbool("stderr")
        else:  # before API 1.42 dockerd attached all three, whatever the query said
            want_stdin, stdout, stderr = True, True, True
        # in a thread: the attach socket waits for the container's lock, which a start or an exit holds long
        fut = await asyncio.to_thread(backend.attach_socket, c.id) if request.qbool("stream") else None
        opts = attachmod.AttachOptions(c, want_stdin, stdout, stderr, keys)
        replay = request.qbool("logs") and c.logged
        binary = version_at_least(request, "1.28")  # dockerd sent text frames before 1.28

        async def handler(raw_stream: RawStream) -> None:
            ws = WebSocketStream(raw_stream, binary=binary)
            try:
                if replay:
                    # framed, one frame per log entry: each entry's payload is a message
                    reader = await asyncio.to_thread(backend.open_log, c.id, stdout, stderr, framed=True)
                    try:
                        async for chunk in logstream.backlog(reader):
                            for payload in _payloads(chunk):
                                await ws.write(payload)
                    finally:
                        reader.close()
                if fut is None:
                    return
                try:
                    sock = await asyncio.wrap_future(fut)
                except errors.DockyardError:
                    return
                await attachmod.pump(sock, ws, opts, raw)  # a WebSocket is never multiplexed
            except (ConnectionError, OSError):
                pass
            finally:
                ws.close()

        return HijackResponse(handler, head=accept_head(key))

    return [get("/containers/{name:.*}/attach/ws", attach_ws)]
