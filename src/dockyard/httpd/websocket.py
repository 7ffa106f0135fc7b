"""A WebSocket on a hijacked connection, the server's side: wsproto frames it, this drives it.

Both front-ends serve WebSockets: the Docker API's attach (api/websocket.py) and the CRI's streaming
server (cri/streaming/websocket.py). What they share is here: the handshake's answer, pings answered,
the closing handshake, and the messages as one byte stream each way (``WebSocketStream``).

How the connection ends, whoever ends it: a client that begins the closing handshake is answered with
its own code; one that breaks the framing is told why with the code wsproto gives the failure (1002,
1007, 1009), as RFC 6455 asks of an endpoint that fails a connection; one that just goes away is not
written to again. Either way the reader sees the end, never an exception.
"""

from __future__ import annotations

import logging
from collections import deque

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

from .server import RawStream

log = logging.getLogger("dockyard.websocket")

# a whole message is kept until its last frame: past this the client is told it is too big
MAX_MESSAGE = 1 << 20


def accept_head(key: str, protocol: str = "") -> bytes:
    """The ``101 Switching Protocols`` answer to a handshake with ``Sec-WebSocket-Key: key``, naming
    the subprotocol chosen if any."""
    head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + generate_accept_token(key.encode()) + b"\r\n")
    if protocol:
        head += b"Sec-WebSocket-Protocol: " + protocol.encode() + b"\r\n"
    return head + b"\r\n"


class WebSocket:
    """The messages of a WebSocket whose handshake was answered (``accept_head``)."""

    def __init__(self, raw: RawStream) -> None:
        self.raw = raw
        self.ws = Connection(ConnectionType.SERVER)
        self._pieces: deque[tuple[bytes | str, bool]] = deque()  # each with whether it ends its message
        self._last_piece = False  # whether the piece taken last ended its message
        self._ended = False  # the client's side is done: it closed, went away or broke the framing

    async def receive(self) -> bytes | str | None:
        """The client's next whole message (bytes if binary, str if text); None once it ended."""
        first = await self.receive_piece()
        if first is None or self._last_piece:
            return first
        parts, size = [first], len(first)
        while not self._last_piece:
            piece = await self.receive_piece()
            if piece is None:
                return None  # a message cut short is no message
            parts.append(piece)
            size += len(piece)
            if size > MAX_MESSAGE:
                await self._fail(CloseReason.MESSAGE_TOO_BIG, f"message larger than {MAX_MESSAGE} bytes")
                return None
        return "".join(parts) if isinstance(first, str) else b"".join(parts)  # type: ignore[arg-type]

    async def receive_piece(self) -> bytes | str | None:
        """The next part of a message as it arrived (a byte stream needs no message boundaries);
        None once the client ended."""
        while not self._pieces:
            if self._ended:
                return None
            data = await self.raw.read()
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, Message):
                    piece = bytes(event.data) if isinstance(event, BytesMessage) else event.data
                    self._pieces.append((piece, event.message_finished))
                elif isinstance(event, Ping) and self.ws.state is ConnectionState.OPEN:
                    await self.raw.write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self._ended = True
                    await self._closing(event)
            if not data:
                self._ended = True
        piece, self._last_piece = self._pieces.popleft()
        return piece

    async def _closing(self, event: CloseConnection) -> None:
        state = self.ws.state
        if state is ConnectionState.OPEN:
            # wsproto's word for a frame it could not parse: the connection is failed with its code
            log.warning("WebSocket: closing on a protocol error: %s (%d)", event.reason, event.code)
        if state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            try:
                await self.raw.write(self.ws.send(event.response()))
            except (ConnectionError, OSError):
                pass

    async def _fail(self, code: int, reason: str) -> None:
        self._ended = True
        self._pieces.clear()
        await self._closing(CloseConnection(code=code, reason=reason))

    async def send(self, message: bytes | str) -> None:
        """One message: binary for bytes, text for str. ConnectionResetError once closed either way."""
        if self.ws.state is not ConnectionState.OPEN:
            raise ConnectionResetError("WebSocket closed")
        event = BytesMessage(data=message) if isinstance(message, bytes) else TextMessage(data=message)
        await self.raw.write(self.ws.send(event))

    def close(self) -> None:
        """Our close frame if the connection is still open (flushed before the socket is), then the
        connection goes."""
        if self.ws.state is ConnectionState.OPEN:
            self.raw.writer.write(self.ws.send(CloseConnection(code=CloseReason.NORMAL_CLOSURE)))
        self.raw.close()


class WebSocketStream(WebSocket):
    """A WebSocket as a byte stream (a ``streams.duplex.Duplex``): what the client's messages carry is
    read, each write is one message.

    ``binary``: writes are binary messages, else text (bytes as UTF-8, what is not UTF-8 replaced).
    ``text_input``: a text message from the client is input (its UTF-8), else it is dropped, for a
    stream of binary data that text cannot carry."""

    def __init__(self, raw: RawStream, binary: bool = True, text_input: bool = True) -> None:
        super().__init__(raw)
        self.binary = binary
        self.text_input = text_input

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" once it closed, went away or broke the framing."""
        while (piece := await self.receive_piece()) is not None:
            if isinstance(piece, str):
                if not self.text_input:
                    continue
                piece = piece.encode()
            if piece:
                return piece
        return b""

    async def write(self, data: bytes) -> None:
        await self.send(data if self.binary else data.decode("utf-8", "replace"))
