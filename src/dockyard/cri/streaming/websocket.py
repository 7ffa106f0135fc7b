"""Kubernetes' channel protocols over a WebSocket, the server's side (wsproto does the framing).

Each message starts with its channel's number: one byte (``channel.k8s.io`` and its ``v4.``/``v5.``
versions), or an ASCII digit followed by base64 of the data (``base64.channel.k8s.io``, text
messages). ``v5.channel.k8s.io`` adds a way to close one channel: the message ``[255, channel]``, which
is how a client says its stdin ended without closing the whole connection.

``SPDY/3.1+portforward.k8s.io`` is no channel protocol: it carries a whole SPDY connection in binary
messages (client-go's port-forward over WebSockets); ``tunnel`` is that byte stream.

The WebSocket itself (pings, the closing handshake, the handshake's answer) is httpd/websocket.py's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

from ...httpd.server import RawStream
from ...httpd.websocket import WebSocket, WebSocketStream

log = logging.getLogger("dockyard.cri.streaming")

CHANNEL = "channel.k8s.io"
BASE64_CHANNEL = "base64.channel.k8s.io"
V4_CHANNEL = "v4.channel.k8s.io"
V4_BASE64_CHANNEL = "v4.base64.channel.k8s.io"
V5_CHANNEL = "v5.channel.k8s.io"
SPDY_TUNNEL_PREFIX = "SPDY/3.1+"
CLOSE_SIGNAL = 255


def is_websocket(headers: dict[str, str]) -> bool:
    return (headers.get("upgrade", "").lower() == "websocket"
            and "upgrade" in [t.strip() for t in headers.get("connection", "").lower().split(",")])


def negotiate(headers: dict[str, str], supported: list[str]) -> str | None:
    """The first protocol the client offers that is supported ("" when it offers none); None if no
    offer is supported."""
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if not offered:
        return "" if "" in supported else None
    return next((p for p in offered if p in supported), None)


class Channel:
    """One numbered channel: what the client sent on it, and our writes to it."""

    def __init__(self, conn: "ChannelConnection", number: int, readable: bool, writable: bool) -> None:
        self.conn = conn
        self.number = number
        self.readable = readable
        self.writable = writable
        self._data: asyncio.Queue[bytes] = asyncio.Queue()
        self._ended = False

    def _receive(self, data: bytes) -> None:
        if self.readable and not self._ended and data:
            self._data.put_nowait(data)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._data.put_nowait(b"")

    async def read(self) -> bytes:
        """The next bytes the client sent on this channel; b"" once it closed it or the connection."""
        data = await self._data.get()
        if not data:
            self._data.put_nowait(b"")
        return data

    async def write(self, data: bytes) -> None:
        if self.writable:
            await self.conn.send(self.number, data)

    async def close(self) -> None:
        """Nothing to say on the wire: a channel ends with the connection."""


class ChannelConnection:
    def __init__(self, raw: RawStream, protocol: str, kinds: list[tuple[bool, bool]]) -> None:
        """``kinds``: for each channel in order, whether the client may write it and we may."""
        self.socket = WebSocket(raw)
        self.protocol = protocol
        self.base64 = "base64" in protocol
        self.close_signal = protocol == V5_CHANNEL
        self.channels = [Channel(self, n, r, w) for n, (r, w) in enumerate(kinds)]

    async def send(self, number: int, data: bytes) -> None:
        if self.base64:
            await self.socket.send(chr(ord("0") + number) + base64.b64encode(data).decode())
        else:
            await self.socket.send(bytes([number]) + data)

    async def serve(self) -> None:
        """Read messages until the client closes; every channel then sees its end."""
        try:
            while (message := await self.socket.receive()) is not None:
                self._message(message)
        except (ConnectionError, OSError):
            pass
        finally:
            for channel in self.channels:
                channel._end()

    def _message(self, message: bytes | str) -> None:
        raw = message.encode() if isinstance(message, str) else message
        if not raw:
            return
        number, payload = raw[0], raw[1:]
        if self.close_signal and number == CLOSE_SIGNAL:
            if len(payload) == 1 and payload[0] < len(self.channels):
                self.channels[payload[0]]._end()
            return
        if self.base64:
            number -= ord("0")
            try:
                payload = base64.b64decode(payload, validate=True)
            except binascii.Error:
                log.warning("WebSocket: channel %d: invalid base64 dropped", number)
                return
        if 0 <= number < len(self.channels):
            self.channels[number]._receive(payload)

    async def close(self) -> None:
        """A close frame, then the connection goes."""
        self.socket.close()


def tunnel(raw: RawStream) -> WebSocketStream:
    """The bytes of the binary messages each way, as a stream: what a tunnelled SPDY connection reads
    and writes (a text message carries none: it is dropped)."""
    return WebSocketStream(raw, binary=True, text_input=False)
