"""Adapters between iterators of byte chunks and file-like readers."""

from __future__ import annotations

from typing import Iterator


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
