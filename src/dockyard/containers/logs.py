"""Reading the shim's log file (conmon's k8s-file format) for `docker logs` and attach `logs=1`.

Each line is ``<RFC3339Nano with offset> <stdout|stderr> <F|P> <payload>``; ``F``
ends a line of the container's output, ``P`` is a piece of a line that had no
newline yet (the next entry of the stream continues it).
"""

from __future__ import annotations

import calendar
import os
from dataclasses import dataclass
from typing import Iterator

STDOUT, STDERR = 1, 2
READ_CHUNK = 1 << 20


@dataclass
class Options:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0  # 0: no bound
    tail: int = -1  # -1: all
    timestamps: bool = False


def ts_ns(stamp: bytes) -> int:
    """Nanoseconds since the epoch of ``2026-11-23T09:17:59.869660415+00:00`` (or ``Z``)."""
    date, _, rest = stamp.partition(b"T")
    year, month, day = int(date[0:4]), int(date[5:7]), int(date[8:10])
    hh, mm, ss = int(rest[0:2]), int(rest[3:5]), int(rest[6:8])
    frac = 0
    i = 8
    if rest[8:9] == b".":
        j = 9
        while j < len(rest) and 48 <= rest[j] <= 57:
            j += 1
        digits = rest[9:j]
        frac = int((digits + b"000000000")[:9])
        i = j
    offset = 0
    tz = rest[i:]
    if tz and tz[:1] in (b"+", b"-"):
        sign = 1 if tz[:1] == b"+" else -1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    secs = calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)) - offset
    return secs * 1_000_000_000 + frac


def rfc3339_utc(ns: int) -> bytes:
    secs, frac = divmod(ns, 1_000_000_000)
    import time
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z").encode()


def _tail_offset(path: str, lines: int) -> int:
    """File offset where the last ``lines`` complete entries start."""
    if lines <= 0:
        return os.path.getsize(path)
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        count = 0
        # the final newline ends the last entry; look for lines+1 newlines back
        while pos > 0:
            step = min(READ_CHUNK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            idx = len(chunk)
            while True:
                idx = chunk.rfind(b"\n", 0, idx)
                if idx < 0:
                    break
                if pos + idx == end - 1:
                    continue
                count += 1
                if count == lines:
                    return pos + idx + 1
        return 0


def read_entries(path: str, opts: Options, start: int = 0,
                 end: int | None = None) -> Iterator[tuple[int, bytes, int]]:
    """Yield (stream, payload, timestamp_ns or 0) for the wanted streams, from byte ``start`` to ``end``.

    Consecutive entries of one stream are joined into one payload when no
    timestamps or time bounds are needed, which keeps big logs cheap to frame.
    """
    if opts.tail >= 0:
        start = max(start, _tail_offset(path, opts.tail))
    need_ts = opts.timestamps or opts.since_ns or opts.until_ns
    want = {b"stdout": STDOUT if opts.stdout else 0, b"stderr": STDERR if opts.stderr else 0}
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(start)
        remaining = None if end is None else end - start
        rest = b""
        while True:
            size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            if size <= 0:
                break
            chunk = f.read(size)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1:]
            batch: list[bytes] = []
            batch_stream = 0
            for line in data[:cut].split(b"\n"):
                parts = line.split(b" ", 3)
                if len(parts) < 3:
                    continue
                stream = want.get(parts[1], 0)
                if not stream:
                    continue
                payload = parts[3] if len(parts) > 3 else b""
                if parts[2] == b"F":
                    payload += b"\n"
                if need_ts:
                    ns = ts_ns(parts[0])
                    if opts.since_ns and ns < opts.since_ns:
                        continue
                    if opts.until_ns and ns > opts.until_ns:
                        return
                    yield stream, payload, ns
                    continue
                if stream != batch_stream and batch:
                    yield batch_stream, b"".join(batch), 0
                    batch = []
                batch_stream = stream
                batch.append(payload)
            if batch:
                yield batch_stream, b"".join(batch), 0


def frame(stream: int, payload: bytes) -> bytes:
    """The Engine API's multiplexed frame: stream, three zero bytes, big-endian length."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def complete_end(path: str) -> int:
    """Offset just past the last complete entry (the shim may be mid-write)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            back = min(size, 1 << 16)  # conmon writes entries of at most 8 KiB of payload
            f.seek(size - back)
            tail = f.read(back)
    except FileNotFoundError:
        return 0
    idx = tail.rfind(b"\n")
    return size - back + idx + 1 if idx >= 0 else size - back
