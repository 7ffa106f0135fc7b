"""httpd/websocket.py, the WebSocket both front-ends serve, on a socket pair: a wsproto client on one
end, the server's side on the other (no daemon)."""

from __future__ import annotations

import asyncio
import socket
from typing import Awaitable, Callable

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from dockyard.httpd.server import RawStream
from dockyard.httpd.websocket import WebSocket, WebSocketStream, accept_head

Session = Callable[[RawStream, socket.socket, Connection], Awaitable[None]]


def run(session: Session) -> None:
    """``session`` with the server's end as a RawStream and the client's as a socket with wsproto's
    client framing (past the handshake, which the HTTP server answers)."""
    async def main() -> None:
        server, client = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=server)
        ws = Connection(ConnectionType.CLIENT)
        raw = RawStream(reader, writer, b"")
        client.setblocking(False)
        try:
            await session(raw, client, ws)
        finally:
            writer.close()
            client.close()
    asyncio.run(main())


async def received(sock: socket.socket, ws: Connection) -> list[object]:
    """What the client gets until the server closes the socket."""
    loop = asyncio.get_running_loop()
    events: list[object] = []
    while data := await asyncio.wait_for(loop.sock_recv(sock, 65536), 30):
        ws.receive_data(data)
        events += list(ws.events())
    return events


def test_accept_head() -> None:
    head = accept_head("dGhlIHNhbXBsZSBub25jZQ==", "v5.channel.k8s.io")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and head.endswith(b"\r\n\r\n")
    # RFC 6455's own example
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    assert b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n" in head
    assert b"Sec-WebSocket-Protocol" not in accept_head("x")


def test_fragmented_message_is_one_message() -> None:
    async def session(raw: RawStream, sock: socket.socket, ws: Connection) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, ws.send(BytesMessage(data=b"\x00first ", message_finished=False)))
        await loop.sock_sendall(sock, ws.send(BytesMessage(data=b"second", message_finished=True)))
        await loop.sock_sendall(sock, ws.send(TextMessage(data="text")))
        server = WebSocket(raw)
        assert await server.receive() == b"\x00first second"
        assert await server.receive() == "text"

    run(session)


def test_stream_reads_text_unless_told_not_and_writes_its_frame_type() -> None:
    async def session(raw: RawStream, sock: socket.socket, ws: Connection) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, ws.send(TextMessage(data="dropped")) + ws.send(BytesMessage(data=b"kept")))
        stream = WebSocketStream(raw, binary=False, text_input=False)
        assert await stream.read() == b"kept"
        await stream.write(b"out \xff")
        stream.close()
        events = await received(sock, ws)
        assert isinstance(events[0], TextMessage) and events[0].data == "out \ufffd"
        assert isinstance(events[1], CloseConnection) and events[1].code == 1000

    run(session)


def test_ping_answered_and_client_close_answered_with_its_code() -> None:
    async def session(raw: RawStream, sock: socket.socket, ws: Connection) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, ws.send(Ping(payload=b"p")) + ws.send(CloseConnection(code=4000)))
        stream = WebSocketStream(raw)
        assert await stream.read() == b""
        assert await stream.read() == b""  # and every later read
        stream.close()
        events = await received(sock, ws)
        assert isinstance(events[0], Pong) and events[0].payload == b"p"
        assert [type(e) for e in events[1:]] == [CloseConnection] and events[1].code == 4000

    run(session)


def test_client_gone_ends_the_stream_and_writes_then_fail() -> None:
    async def session(raw: RawStream, sock: socket.socket, ws: Connection) -> None:
        sock.shutdown(socket.SHUT_WR)
        stream = WebSocketStream(raw)
        assert await stream.read() == b""
        try:
            await stream.write(b"late")
        except ConnectionResetError:
            pass
        else:
            raise AssertionError("a write after the client went away succeeded")
        stream.close()
        assert await received(sock, ws) == []  # nothing written to a client that went away

    run(session)


def test_protocol_error_fails_the_connection_with_its_code() -> None:
    async def session(raw: RawStream, sock: socket.socket, ws: Connection) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, b"\x82\x04data")  # an unmasked frame from a client (RFC 6455 5.1)
        stream = WebSocketStream(raw)
        assert await stream.read() == b""
        stream.close()
        events = await received(sock, ws)
        assert [type(e) for e in events] == [CloseConnection] and events[0].code == 1002

    run(session)


def test_message_past_the_limit_is_refused(monkeypatch) -> None:
    monkeypatch.setattr("dockyard.httpd.websocket.MAX_MESSAGE", 8)

    async def session(raw: RawStream, sock: socket.socket, ws: Connection) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            await loop.sock_sendall(sock, ws.send(BytesMessage(data=b"1234", message_finished=False)))
        server = WebSocket(raw)
        assert await server.receive() is None
        server.close()
        events = await received(sock, ws)
        assert [type(e) for e in events] == [CloseConnection] and events[0].code == 1009

    run(session)
