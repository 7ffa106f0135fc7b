"""SPDY/3.1, the server's side, as much as the kubelet's streaming protocols use of it.

client-go (through moby/spdystream) upgrades an HTTP/1.1 request to SPDY/3.1 and then opens
streams with SYN_STREAM, each named by its headers (``streamType``, ``port``, ``requestID``); the
server answers each with SYN_REPLY and both sides exchange data frames, a FIN flag half-closing a
direction. Header blocks are compressed with one zlib stream per direction for the whole connection,
primed with the spec's fixed dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1).

No Python SPDY library is maintained (PyPI has python-spdylay, 2012, a binding of a C library, and
spdy-py, one release in 2021), and the part needed here is small: hence this module.

Flow control: SPDY/3.1 windows (64 KiB per stream and per session at the start) are granted back to
the client with WINDOW_UPDATE as its data is consumed, so a client that honours them never stalls.
Our own sends do not wait on the client's windows: spdystream, the one client that matters, never
sends WINDOW_UPDATE (it does no flow control), so a sender that waited would stop after 64 KiB; the
TCP connection's own backpressure (``drain``) bounds what is in flight instead.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from typing import Awaitable, Callable

log = logging.getLogger("dockyard.cri.streaming")

VERSION = 3
# control frame types
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL = 1, 2, 3, 5
GOAWAY_OK = 0

DEFAULT_WINDOW = 64 * 1024
MAX_DATA = 32 * 1024  # our data frames: small enough to interleave streams
MAX_FRAME = 1 << 20  # what a client may send in one frame: its stdin comes in pieces of 32 KiB
MAX_HEADER_BLOCK = 256 * 1024  # a decompressed header block past this is refused (a zlib bomb)

# The header compression dictionary of SPDY/3 (the spec gives it as bytes; this is the same text):
# names and values, each after its length as a 32-bit big-endian integer, then a run of bare text.
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date etag "
    "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
    "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
    "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status").split() + ["200 OK"] + (
    "version HTTP/1.1 url public set-cookie keep-alive origin").split()
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,"
    "deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + _DICT_TAIL.encode()


class ProtocolError(Exception):
    """The peer broke the framing: the connection cannot go on."""


Headers = list[tuple[str, str]]


def encode_headers(headers: Headers) -> bytes:
    """A header block before compression: count, then each name and value after its length."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers:
        for text in (name.lower().encode(), value.encode()):
            out += [struct.pack(">I", len(text)), text]
    return b"".join(out)


def decode_headers(block: bytes) -> Headers:
    try:
        (count,), pos = struct.unpack_from(">I", block), 4
        headers: Headers = []
        for _ in range(count):
            texts = []
            for _ in range(2):
                (size,) = struct.unpack_from(">I", block, pos)
                pos += 4
                if pos + size > len(block):
                    raise ProtocolError("header block cut short")
                texts.append(block[pos:pos + size].decode("utf-8", "replace"))
                pos += size
            headers.append((texts[0].lower(), texts[1]))
        return headers
    except struct.error:
        raise ProtocolError("header block cut short") from None


def control_frame(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


class HeaderCodec:
    """One direction's zlib stream: it spans every header block of the connection."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                         zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._deflate.compress(encode_headers(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, block: bytes) -> Headers:
        try:
            plain = self._inflate.decompress(block, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise ProtocolError(f"header block: {e}") from None
        if self._inflate.unconsumed_tail:
            raise ProtocolError("header block too large")
        return decode_headers(plain)


class Stream:
    """One stream the client opened: its headers, what it sent, and our half to write on."""

    def __init__(self, conn: "Connection", stream_id: int, headers: Headers, fin: bool) -> None:
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._data: asyncio.Queue[bytes] = asyncio.Queue()
        self._remote_closed = False
        self.local_closed = False
        self._unacked = 0  # bytes taken by the reader since the last WINDOW_UPDATE
        if fin:
            self._end()

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k == name.lower()), "")

    def _end(self) -> None:
        if not self._remote_closed:
            self._remote_closed = True
            self._data.put_nowait(b"")

    def _receive(self, data: bytes) -> None:
        if not self._remote_closed and data:
            self._data.put_nowait(data)

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" once it half-closed (FIN), reset or went away."""
        data = await self._data.get()
        if not data:
            self._data.put_nowait(b"")  # every later read sees the end too
            return b""
        self._unacked += len(data)
        if self._unacked >= DEFAULT_WINDOW // 2:
            await self.conn._grant(self.id, self._unacked)
            self._unacked = 0
        return data

    async def write(self, data: bytes) -> None:
        if self.local_closed:
            raise ConnectionResetError("write on a closed SPDY stream")
        view = memoryview(data)
        while view:
            await self.conn._send(data_frame(self.id, 0, bytes(view[:MAX_DATA])))
            view = view[MAX_DATA:]

    async def close(self) -> None:
        """Half-close our side (a data frame with FIN); the client may still send."""
        if not self.local_closed and not self.conn.closed:
            self.local_closed = True
            await self.conn._send(data_frame(self.id, FLAG_FIN, b""))

    async def reset(self, status: int = CANCEL) -> None:
        self.local_closed = True
        self._end()
        if not self.conn.closed:
            await self.conn._send(control_frame(RST_STREAM, 0, struct.pack(">II", self.id, status)))


# Whether a new stream is taken: the handler's decision, made before the reply is sent
# (a refused one is reset, as spdystream does when its handler returns an error).
Accept = Callable[[Stream], Awaitable[bool]]


class Connection:
    """The server's side of one SPDY/3.1 connection on an upgraded HTTP connection."""

    def __init__(self, reader: Callable[[], Awaitable[bytes]], writer: Callable[[bytes], Awaitable[None]]) -> None:
        self._read = reader
        self._write = writer
        self._buf = bytearray()
        self._codec = HeaderCodec()
        self.streams: dict[int, Stream] = {}
        self._last_id = 0
        self.closed = False
        self._write_lock = asyncio.Lock()
        self._session_unacked = 0

    async def _send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("SPDY connection closed")
        async with self._write_lock:
            await self._write(frame)

    async def _grant(self, stream_id: int, size: int) -> None:
        """Give the client back window for data read: on the stream, and on the session (id 0)."""
        if self.closed:
            return
        frames = [control_frame(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, size))]
        self._session_unacked += size
        if self._session_unacked >= DEFAULT_WINDOW // 2:
            frames.append(control_frame(WINDOW_UPDATE, 0, struct.pack(">II", 0, self._session_unacked)))
            self._session_unacked = 0
        await self._send(b"".join(frames))

    async def _frame(self) -> tuple[bytes, bytes] | None:
        """The next frame's 8-byte head and its payload; None at the end of the connection."""
        while len(self._buf) < 8 or len(self._buf) < 8 + int.from_bytes(self._buf[5:8], "big"):
            if len(self._buf) >= 8 and int.from_bytes(self._buf[5:8], "big") > MAX_FRAME:
                raise ProtocolError("frame too large")
            data = await self._read()
            if not data:
                return None
            self._buf += data
        size = 8 + int.from_bytes(self._buf[5:8], "big")
        head, payload = bytes(self._buf[:8]), bytes(self._buf[8:size])
        del self._buf[:size]
        return head, payload

    async def serve(self, accept: Accept) -> None:
        """Read frames until the client goes; every stream then sees its end."""
        try:
            while (frame := await self._frame()) is not None:
                await self._dispatch(*frame, accept)
        except ProtocolError as e:
            log.warning("SPDY: %s", e)
            await self.go_away(PROTOCOL_ERROR)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            for stream in self.streams.values():
                stream._end()

    async def _dispatch(self, head: bytes, payload: bytes, accept: Accept) -> None:
        word, flags_len = struct.unpack(">II", head)
        flags = flags_len >> 24
        if not word & 0x80000000:  # a data frame
            stream = self.streams.get(word & 0x7FFFFFFF)
            if stream is None:
                await self._send(control_frame(RST_STREAM, 0, struct.pack(">II", word & 0x7FFFFFFF, INVALID_STREAM)))
                return
            stream._receive(payload)
            if flags & FLAG_FIN:
                stream._end()
            return
        version, kind = word >> 16 & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        if kind == SYN_STREAM:
            await self._syn_stream(flags, payload, accept)
        elif kind == RST_STREAM:
            stream = self.streams.get(_u31(payload))
            if stream is not None:
                stream.local_closed = True
                stream._end()
        elif kind == PING:
            await self._send(control_frame(PING, 0, payload[:4]))  # the client's ping, echoed
        elif kind == GOAWAY:
            # no new streams will come; the open ones go on until the connection ends
            pass
        elif kind == HEADERS:
            stream = self.streams.get(_u31(payload))
            self._codec.decompress(payload[4:])  # the zlib stream must see every block
            if stream is not None and flags & FLAG_FIN:
                stream._end()
        # SETTINGS and WINDOW_UPDATE concern our sends, which do not wait on windows (module doc);
        # SYN_REPLY and unknown types are ignored, as the spec asks of unknown control frames

    async def _syn_stream(self, flags: int, payload: bytes, accept: Accept) -> None:
        if len(payload) < 10:
            raise ProtocolError("SYN_STREAM frame too short")
        stream_id = _u31(payload)
        headers = self._codec.decompress(payload[10:])
        if stream_id % 2 == 0 or stream_id <= self._last_id:
            # a client's streams are odd and increasing
            await self._send(control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, PROTOCOL_ERROR)))
            return
        self._last_id = stream_id
        stream = Stream(self, stream_id, headers, bool(flags & FLAG_FIN))
        self.streams[stream_id] = stream
        if not await accept(stream):
            del self.streams[stream_id]
            await stream.reset(REFUSED_STREAM)
            return
        await self._send(control_frame(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._codec.compress([])))

    def forget(self, stream: Stream) -> None:
        """A stream done with on both sides: its id stays taken, its buffers go."""
        self.streams.pop(stream.id, None)

    async def go_away(self, status: int = GOAWAY_OK) -> None:
        if not self.closed:
            try:
                await self._send(control_frame(GOAWAY, 0, struct.pack(">II", self._last_id, status)))
            except (ConnectionError, OSError):
                pass
        self.closed = True


def _u31(payload: bytes) -> int:
    if len(payload) < 4:
        raise ProtocolError("control frame too short")
    return int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
