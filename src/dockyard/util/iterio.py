"""Adapters between iterators of byte chunks and file-like readers, and reading files in blocks of lines."""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

READ_CHUNK = 1 << 20


class IterReader:
    """A file-like ``read(n)`` over an iterator of byte chunks.

    Lets code that produces chunks (tar rebuilders, compressors) feed
    consumers that want a file object (tarfile, urllib3 request bodies)
    without holding the whole stream in memory.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


def line_blocks(f: BinaryIO) -> Iterator[bytes]:
    """Blocks of complete lines to the end of the file (a torn last line is left for later)."""
    rest = b""
    while True:
        chunk = f.read(READ_CHUNK)
        if not chunk:
            break
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]
    if rest:
        f.seek(-len(rest), os.SEEK_CUR)
