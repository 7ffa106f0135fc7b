"""Byte-stream plumbing for layers and image archives: sniffing, decompression, hashing.

Everything here works on forward-only streams (a request body, a tar member),
so an upload flows through decompression, hashing and extraction in one pass.
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from types import ModuleType
from typing import IO, Any

# compressed bytes fed to the decompressor at a time (gzip.GzipFile feeds 8 KiB, which costs a call per 8 KiB)
INFLATE_INPUT = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


class InvalidDigest(Exception):
    pass


class Peekable:
    """A forward-only reader that can look at its first bytes without consuming them."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            chunk = self._raw.read(n - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)

    def readable(self) -> bool:
        return True


def compression_of(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return None


def decompressed(raw: IO[bytes], allow: tuple[str, ...] = ("gzip", "zstd", "xz", "bzip2")) -> IO[bytes]:
    """``raw`` decompressed according to its magic bytes (or as-is when plain)."""
    p = Peekable(raw)
    kind = compression_of(p.peek(6))
    if kind is None:
        return p  # type: ignore[return-value]
    if kind not in allow:
        raise ValueError(f"unsupported compression {kind}")
    if kind == "gzip":
        return GzipReader(p)  # type: ignore[return-value]
    if kind == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(p, read_across_frames=True)  # type: ignore[arg-type]
    if kind == "xz":
        import lzma
        return lzma.LZMAFile(p)  # type: ignore[arg-type]
    import bz2
    return bz2.BZ2File(p)  # type: ignore[arg-type]


def _zlib() -> ModuleType:
    """ISA-L's zlib when installed (same API and checks, about 2x faster inflate), else the standard one.

    Imported on first use so the daemon's idle footprint does not carry it.
    """
    try:
        from isal import isal_zlib
        return isal_zlib
    except ImportError:
        return zlib


def corrupt_data_errors() -> tuple[type[Exception], ...]:
    """What the decompressors raise for bad input (as opposed to a failing host).

    zstandard is only asked about when it was imported, i.e. when a zstd stream was met.
    """
    import lzma
    zstd = sys.modules.get("zstandard")
    return (EOFError, zlib.error, lzma.LZMAError) + ((zstd.ZstdError,) if zstd else ())


class GzipReader:
    """A gzip stream (one or more members, zero padding after) decompressed in big steps.

    zlib's gzip mode (wbits 31) checks each member's CRC-32 and length itself.
    Output per read is bounded by ``n``, so a small blob cannot balloon memory.
    Corrupt data raises ``zlib.error`` whichever zlib inflates (tarfile and the
    callers know that one), a truncated stream ``EOFError``.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._z = _zlib()
        self._d: Any = self._z.decompressobj(31)
        self._input = b""  # compressed bytes not yet given to the decompressor
        self._between = False  # the last member ended; another may follow
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(INFLATE_INPUT):
                parts.append(chunk)
            return b"".join(parts)
        while not self._eof and n:
            if not self._input:
                self._input = self._raw.read(INFLATE_INPUT)
                if not self._input:
                    if not self._between:
                        raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                    self._eof = True
                    break
            if self._between:
                self._input = self._input.lstrip(b"\0")
                if not self._input:
                    continue
                self._d, self._between = self._z.decompressobj(31), False
            try:
                out = self._d.decompress(self._input, n)
            except self._z.error as e:
                raise zlib.error(str(e)) from None
            self._input = self._d.unconsumed_tail
            if self._d.eof:
                self._input = self._d.unused_data + self._input
                self._between = True
            if out:
                return out
        return b""

    def readable(self) -> bool:
        return True


class HashingReader:
    """Counts and sha256-hashes every byte read through it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1024 * 1024):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
