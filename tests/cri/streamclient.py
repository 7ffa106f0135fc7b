"""Clients of the CRI streaming server for the tests: SPDY/3.1 as client-go's spdystream speaks it, and
Kubernetes' channel protocol over a WebSocket (wsproto). Blocking, with a reader thread per connection.

The SPDY framing here is written apart from the server's (frame layout, header blocks); only the
spec's compression dictionary is shared.
"""

from __future__ import annotations

import base64
import json
import queue
import socket
import struct
import threading
import urllib.parse
import zlib
from dataclasses import dataclass, field

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection, RejectData,
                            Request, TextMessage)

from dockyard.cri.streaming.spdy import DICTIONARY

TIMEOUT = 30.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _connect(url: str) -> tuple[socket.socket, str, str]:
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return sock, parts.netloc, target


def _read_head(sock: socket.socket) -> tuple[Response, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return Response(status, headers, rest), rest


def plain_get(url: str, headers: dict[str, str] | None = None) -> Response:
    """One request without an upgrade, its whole answer (the server closes or says its length)."""
    sock, host, target = _connect(url)
    with sock:
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        resp, rest = _read_head(sock)
        body = rest
        while data := sock.recv(65536):
            body += data
        resp.body = body
        return resp


# -- SPDY/3.1 -------------------------------------------------------------------------------------

@dataclass
class _ClientStream:
    id: int
    data: "queue.Queue[bytes]" = field(default_factory=queue.Queue)
    replied: threading.Event = field(default_factory=threading.Event)
    reset: bool = False


class SpdyClient:
    def __init__(self, url: str, protocols: list[str], upgrade: str = "SPDY/3.1",
                 tunnel: "WsTunnel | None" = None) -> None:
        """SPDY on an upgraded HTTP connection, or in the messages of a WebSocket (``tunnel``)."""
        if tunnel is not None:
            self.sock: socket.socket | WsTunnel = tunnel
            self.response, self._buf = Response(101, {}, b""), b""
        else:
            self.sock, host, target = _connect(url)
            lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Connection: Upgrade", f"Upgrade: {upgrade}",
                     "Content-Length: 0", *(f"X-Stream-Protocol-Version: {p}" for p in protocols)]
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            self.response, self._buf = _read_head(self.sock)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._lock = threading.Lock()
        self._next = 1
        self.streams: dict[int, _ClientStream] = {}
        self.goaway = threading.Event()
        self.closed = threading.Event()
        self.window_updates = 0
        self.pings: "queue.Queue[int]" = queue.Queue()
        if self.response.status == 101:
            threading.Thread(target=self._reader, daemon=True).start()

    def _send(self, frame: bytes) -> None:
        with self._lock:
            self.sock.sendall(frame)

    def open(self, headers: dict[str, str], wait: bool = True) -> int:
        """A new stream (SYN_STREAM), once the server replied to it."""
        block = struct.pack(">I", len(headers))
        for name, value in headers.items():
            for text in (name.lower().encode(), value.encode()):
                block += struct.pack(">I", len(text)) + text
        with self._lock:
            sid = self._next
            self._next += 2
            self.streams[sid] = _ClientStream(sid)
            compressed = self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            payload = struct.pack(">IIBB", sid, 0, 0, 0) + compressed
            self.sock.sendall(struct.pack(">HHI", 0x8003, 1, len(payload)) + payload)
        if wait:
            assert self.streams[sid].replied.wait(TIMEOUT), f"no reply to stream {sid}"
        return sid

    def send(self, sid: int, data: bytes, fin: bool = False) -> None:
        self._send(struct.pack(">II", sid, (int(fin) << 24) | len(data)) + data)

    def ping(self, ping_id: int) -> None:
        self._send(struct.pack(">HHII", 0x8003, 6, 4, ping_id))

    def read_all(self, sid: int) -> bytes:
        """What the server sent on the stream until it finished (FIN or reset)."""
        out = b""
        while chunk := self.streams[sid].data.get(timeout=TIMEOUT):
            out += chunk
        self.streams[sid].data.put(b"")
        return out

    def read_some(self, sid: int) -> bytes:
        return self.streams[sid].data.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.sock.close()

    def _reader(self) -> None:
        buf = self._buf
        try:
            while True:
                while len(buf) < 8 or len(buf) < 8 + int.from_bytes(buf[5:8], "big"):
                    data = self.sock.recv(65536)
                    if not data:
                        return
                    buf += data
                size = 8 + int.from_bytes(buf[5:8], "big")
                head, payload, buf = buf[:8], buf[8:size], buf[size:]
                self._frame(head, payload)
        except OSError:
            pass
        finally:
            self.closed.set()
            for stream in self.streams.values():
                stream.data.put(b"")

    def _frame(self, head: bytes, payload: bytes) -> None:
        first, flags_len = struct.unpack(">II", head)
        fin = bool(flags_len >> 24 & 1)
        if not first & 0x80000000:
            stream = self.streams[first]
            if payload:
                stream.data.put(payload)
            if fin:
                stream.data.put(b"")
            return
        kind = first & 0xFFFF
        if kind == 2:  # SYN_REPLY
            sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            self._inflate.decompress(payload[4:])
            self.streams[sid].replied.set()
            if fin:
                self.streams[sid].data.put(b"")
        elif kind == 3:  # RST_STREAM
            sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            self.streams[sid].reset = True
            self.streams[sid].replied.set()
            self.streams[sid].data.put(b"")
        elif kind == 6:  # PING
            self.pings.put(int.from_bytes(payload[:4], "big"))
        elif kind == 7:  # GOAWAY
            self.goaway.set()
        elif kind == 9:  # WINDOW_UPDATE
            self.window_updates += 1


def resize_message(width: int, height: int) -> bytes:
    return json.dumps({"Width": width, "Height": height}).encode()


# -- WebSocket ------------------------------------------------------------------------------------

class WsClient:
    def __init__(self, url: str, protocols: list[str]) -> None:
        self.sock, host, target = _connect(url)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=host, target=target, subprotocols=protocols)))
        self.protocol: str | None = None
        self.rejected: int | None = None
        self.messages: "queue.Queue[bytes | str | None]" = queue.Queue()
        self._pending: list[object] = []
        while self.protocol is None and self.rejected is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.protocol = event.subprotocol or ""
                elif isinstance(event, RejectConnection):
                    self.rejected = event.status_code
                elif isinstance(event, RejectData):
                    pass
                else:
                    self._pending.append(event)
        self.binary = "base64" not in (self.protocol or "")
        if self.rejected is None:
            for event in self._pending:
                self._event(event)
            threading.Thread(target=self._reader, daemon=True).start()

    def send(self, channel: int, data: bytes) -> None:
        if self.binary:
            self.sock.sendall(self.ws.send(BytesMessage(data=bytes([channel]) + data)))
        else:
            self.sock.sendall(self.ws.send(TextMessage(data=str(channel) + base64.b64encode(data).decode())))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def close(self) -> None:
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:
            pass
        self.sock.close()

    def _event(self, event: object) -> None:
        if isinstance(event, BytesMessage):
            self.messages.put(bytes(event.data))
        elif isinstance(event, TextMessage):
            self.messages.put(event.data)
        elif isinstance(event, CloseConnection):
            self.messages.put(None)

    def _reader(self) -> None:
        try:
            while data := self.sock.recv(65536):
                self.ws.receive_data(data)
                for event in self.ws.events():
                    self._event(event)
        except Exception:
            pass
        finally:
            self.messages.put(None)

    def collect(self) -> dict[int, bytes]:
        """Every channel's data until the server closes: {channel: bytes} (base64 decoded)."""
        out: dict[int, bytes] = {}
        while (message := self.messages.get(timeout=TIMEOUT)) is not None:
            channel, payload = self.decode(message)
            out[channel] = out.get(channel, b"") + payload
        return out

    def next(self) -> tuple[int, bytes]:
        message = self.messages.get(timeout=TIMEOUT)
        assert message is not None, "closed"
        return self.decode(message)

    def read_until(self, channel: int, wanted: bytes) -> bytes:
        """``channel``'s data until it holds ``wanted`` (the other channels' is dropped)."""
        seen = b""
        while wanted not in seen:
            got, data = self.next()
            seen += data if got == channel else b""
        return seen

    @staticmethod
    def decode(message: bytes | str) -> tuple[int, bytes]:
        if isinstance(message, str):
            return int(message[0]), base64.b64decode(message[1:])
        return message[0], message[1:]


class WsTunnel:
    """A WebSocket's binary messages as a socket's bytes, for SPDY tunnelled in them."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws

    def sendall(self, data: bytes) -> None:
        self.ws.send_raw(data)

    def recv(self, size: int) -> bytes:
        message = self.ws.messages.get(timeout=TIMEOUT)
        assert not isinstance(message, str)
        return message or b""

    def close(self) -> None:
        self.ws.close()
