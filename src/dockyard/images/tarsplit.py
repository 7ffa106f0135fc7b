"""Rebuild a layer's exact tar from its unpacked directory (like vbatts/tar-split).

A layer is identified by the sha256 of its uncompressed tar, and `docker save`
must hand that very tar back. Keeping a copy of every layer tar would double
the disk use and the write cost of a load; instead, while a layer is
extracted, every byte of the stream that is *not* file content (headers, PAX
records, padding, end-of-archive blocks) is recorded, together with where each
file's content went. Replaying the record with the files' bytes yields the
original stream, byte for byte.

Record format: a sequence of ``b"R" <u32 len> <bytes>`` (raw stream bytes) and
``b"F" <u64 size> <u16 len> <path>`` (``size`` bytes read from ``path``,
relative to the layer directory).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tarfile
from typing import IO, Any, Iterator

from .streams import InvalidDigest

CHUNK = 1024 * 1024


class Recorder:
    """Wraps the uncompressed layer stream; tarfile reads through it.

    tarfile reads ahead in blocks, so raw bytes are buffered from the last
    emitted position and cut when the extractor announces a payload range.
    """

    def __init__(self, raw: Any, out: IO[bytes]) -> None:
        self._raw = raw
        self._out = out
        self._hash = hashlib.sha256()
        self.pos = 0  # bytes read from raw
        self._emitted = 0  # stream offset up to which the record is written
        self._buf = bytearray()  # raw bytes from _emitted to pos (minus skipped payload)
        self._skip_until = 0  # payload bytes below this offset are not buffered

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if not data:
            return data
        self._hash.update(data)
        start = self.pos
        self.pos += len(data)
        if self.pos > self._skip_until:
            self._buf += data[max(0, self._skip_until - start):]
        return data

    def readable(self) -> bool:
        return True

    def payload(self, member: tarfile.TarInfo, path: str) -> None:
        """``member``'s content (at ``offset_data``) goes to ``path``."""
        start, size = member.offset_data, member.size
        keep = start - self._emitted
        if keep:
            self._raw_record(bytes(self._buf[:keep]))
        encoded = path.encode("utf-8", "surrogateescape")
        self._out.write(b"F" + struct.pack(">QH", size, len(encoded)) + encoded)
        end = start + size
        # bytes of this payload already read ahead sit in _buf after the header bytes
        buffered_end = self._emitted + len(self._buf)
        del self._buf[:keep + max(0, min(end, buffered_end) - start)]
        self._emitted = end
        self._skip_until = end

    def finish(self) -> tuple[str, int]:
        """Read to the end of the stream; returns (diff ID, uncompressed size)."""
        while self.read(CHUNK):
            pass
        if self._buf:
            self._raw_record(bytes(self._buf))
            self._buf.clear()
        self._emitted = self.pos
        return "sha256:" + self._hash.hexdigest(), self.pos

    def _raw_record(self, data: bytes) -> None:
        for i in range(0, len(data), 1 << 30):
            part = data[i:i + (1 << 30)]
            self._out.write(b"R" + struct.pack(">I", len(part)) + part)


def replay(record_path: str, layer_dir: str) -> Iterator[bytes]:
    """Yield the layer's original tar stream."""
    with open(record_path, "rb") as rec:
        while True:
            kind = rec.read(1)
            if not kind:
                return
            if kind == b"R":
                (n,) = struct.unpack(">I", rec.read(4))
                yield rec.read(n)
            elif kind == b"F":
                size, plen = struct.unpack(">QH", rec.read(10))
                path = rec.read(plen).decode("utf-8", "surrogateescape")
                yield from _file_bytes(os.path.join(layer_dir, path), size)
            else:
                raise InvalidDigest(f"corrupt tar-split record {record_path}")


def _file_bytes(path: str, size: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        remaining = size
        while remaining:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                raise InvalidDigest(f"layer file {path} is shorter than recorded")
            remaining -= len(chunk)
            yield chunk
