"""Kubernetes' channel protocols over a WebSocket, the server's side (wsproto does the framing).

Each message starts with its channel's number: one byte (``channel.k8s.io`` and its ``v4.``/``v5.``
versions), or an ASCII digit followed by base64 of the data (``base64.channel.k8s.io``, text
messages). ``v5.channel.k8s.io`` adds a way to close one channel: the message ``[255, channel]``, which
is how a client says its stdin ended without closing the whole connection.

``SPDY/3.1+portforward.k8s.io`` is no channel protocol: it carries a whole SPDY connection in binary
messages (client-go's port-forward over WebSockets); ``Tunnel`` is that byte stream.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

from ...httpd.server import RawStream

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


def handshake_head(headers: dict[str, str], protocol: str) -> bytes:
    key = headers.get("sec-websocket-key", "").encode()
    head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + generate_accept_token(key) + b"\r\n")
    if protocol:
        head += b"Sec-WebSocket-Protocol: " + protocol.encode() + b"\r\n"
    return head + b"\r\n"


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
        self.raw = raw
        self.protocol = protocol
        self.base64 = "base64" in protocol
        self.close_signal = protocol == V5_CHANNEL
        self.ws = Connection(ConnectionType.SERVER)
        self.channels = [Channel(self, n, r, w) for n, (r, w) in enumerate(kinds)]
        self.closed = False

    async def send(self, number: int, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("WebSocket closed")
        if self.base64:
            message: Message = TextMessage(data=chr(ord("0") + number) + base64.b64encode(data).decode())
        else:
            message = BytesMessage(data=bytes([number]) + data)
        await self.raw.write(self.ws.send(message))

    async def serve(self) -> None:
        """Read messages until the client closes; every channel then sees its end."""
        try:
            while not self.closed:
                data = await self.raw.read()
                self.ws.receive_data(data or None)
                for event in self.ws.events():
                    if isinstance(event, Message):
                        self._message(event)
                    elif isinstance(event, Ping):
                        await self.raw.write(self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        self.closed = True
                        await _answer_close(self.raw, self.ws, event)
                if not data:
                    break
        except (ConnectionError, OSError):
            pass
        except (LocalProtocolError, RemoteProtocolError) as e:
            log.warning("WebSocket: %s", e)
        finally:
            self.closed = True
            for channel in self.channels:
                channel._end()

    def _message(self, event: Message) -> None:
        raw = event.data.encode() if isinstance(event, TextMessage) else bytes(event.data)
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
        if not self.closed:
            self.closed = True
            try:
                await self.raw.write(self.ws.send(CloseConnection(code=1000)))
            except (ConnectionError, OSError):
                pass
        self.raw.close()


class Tunnel:
    """The bytes of the binary messages each way, as a stream: what a tunnelled SPDY connection reads
    and writes."""

    def __init__(self, raw: RawStream) -> None:
        self.raw = raw
        self.ws = Connection(ConnectionType.SERVER)
        self._input = bytearray()
        self._closed = False

    async def read(self) -> bytes:
        """The next bytes of the client's messages; b"" once it closed."""
        while not self._input and not self._closed:
            data = await self.raw.read()
            try:
                self.ws.receive_data(data or None)
                for event in self.ws.events():
                    if isinstance(event, BytesMessage):
                        self._input += event.data
                    elif isinstance(event, Ping):
                        await self.raw.write(self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        self._closed = True
                        await _answer_close(self.raw, self.ws, event)
            except (LocalProtocolError, RemoteProtocolError) as e:
                log.warning("WebSocket: %s", e)
                self._closed = True
            if not data:
                self._closed = True
        out = bytes(self._input)
        self._input.clear()
        return out

    async def write(self, data: bytes) -> None:
        await self.raw.write(self.ws.send(BytesMessage(data=data)))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.raw.writer.write(self.ws.send(CloseConnection(code=1000)))
            except (ConnectionError, OSError, LocalProtocolError):
                pass
        self.raw.close()


async def _answer_close(raw: RawStream, ws: Connection, event: CloseConnection) -> None:
    """The closing handshake's answer, when the client began it (not when it only went away, nor when
    it answers ours)."""
    if ws.state is ConnectionState.REMOTE_CLOSING:
        await raw.write(ws.send(event.response()))
