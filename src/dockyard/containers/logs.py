"""Reading a container's json-file log (and its rotated files) for `docker logs` and attach `logs=1`.

Each line is ``{"log":"…","stream":"stdout|stderr","time":"RFC3339Nano"}``; a
``log`` without a final newline is a piece of a line the next entry of the
stream continues. Output is the Engine API's: a multiplexed frame per entry, or raw bytes
for a TTY; big logs are rendered a block of lines at a time (see ``render``).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..streams.duplex import frame
from ..util.iterio import READ_CHUNK, line_blocks
from ..util.timefmt import parse_ns, rfc3339_nano_fixed

STDOUT, STDERR = 1, 2


@dataclass
class Options:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0  # 0: no bound
    tail: int = -1  # -1: all
    timestamps: bool = False


# streams.duplex.frame's header, as a struct for the fast path that frames many lines at once
_HEADER = struct.Struct(">BxxxL").pack


_STREAMS = {"stdout": STDOUT, "stderr": STDERR}
_PLAIN_END = b'\\n","stream":"'


def render(block: bytes, opts: Options, tty: bool) -> tuple[bytes, bool]:
    """The output for a block of complete json-file lines, and whether an entry past ``until`` was reached."""
    if not block:
        return b"", False
    if not (opts.timestamps or opts.since_ns or opts.until_ns):
        has_out, has_err = b'"stream":"stdout"' in block, b'"stream":"stderr"' in block
        lines = block.count(b"\n")
        # one stream, every entry a whole line, no escapes but the final \n: cut the payloads out in bulk
        if has_out != has_err and block.count(b"\\") == lines and block.count(_PLAIN_END) == lines:
            stream = STDOUT if has_out else STDERR
            if not (opts.stdout if stream == STDOUT else opts.stderr):
                return b"", False
            entries = block.split(b"\n")[:-1]
            if tty:
                return b"\n".join([line[8:line.rindex(_PLAIN_END)] for line in entries]) + b"\n", False
            # a frame per entry, as dockerd sends: docker-py's log stream yields one item per frame
            # (the payload is line[8:end] and the \n the join puts after it)
            return b"\n".join([_HEADER(stream, end - 7) + line[8:end]
                               for line in entries for end in (line.rindex(_PLAIN_END),)]) + b"\n", False
    pieces: list[bytes] = []
    past_until = False
    for line in block.split(b"\n")[:-1]:
        try:
            entry = json.loads(line)
            stream = _STREAMS[entry["stream"]]
            payload = str(entry["log"]).encode("utf-8")
        except (ValueError, KeyError, TypeError):
            continue  # a torn line: dockerd skips what it cannot decode too
        if not (opts.stdout if stream == STDOUT else opts.stderr):
            continue
        if opts.timestamps or opts.since_ns or opts.until_ns:
            ns = parse_ns(str(entry.get("time", "")).encode())
            if opts.since_ns and ns < opts.since_ns:
                continue
            if opts.until_ns and ns > opts.until_ns:
                past_until = True
                break
            if opts.timestamps:
                payload = rfc3339_nano_fixed(ns).encode() + b" " + payload
        pieces.append(payload if tty else frame(stream, payload))
    return b"".join(pieces), past_until


def _open(path: str) -> BinaryIO:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def _tail_offset(f: BinaryIO, lines: int) -> tuple[int, int]:
    """(offset where the last ``lines`` complete lines of the file start, how many lines that is)."""
    end = f.seek(0, os.SEEK_END)
    if lines <= 0:
        return end, 0
    pos = end
    count = 0
    seen_last = False  # the newline that ends the last complete line
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
            if not seen_last:
                seen_last = True
                continue
            count += 1
            if count == lines:
                return pos + idx + 1, count
    return 0, count + 1 if seen_last else 0


class LogReader:
    """Renders a json-file log, its rotated files first, and follows it across rotations."""

    def __init__(self, path: str, rotated: list[str], opts: Options, tty: bool) -> None:
        self.path = path
        self.rotated = rotated  # newest first
        self.opts = opts
        self.tty = tty
        self.finished = False  # an entry past ``until`` was reached
        self._f: BinaryIO | None = None

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def backlog(self) -> Iterator[bytes]:
        """What the log holds now (honouring ``tail``); afterwards ``more`` follows from its end."""
        try:
            self._f = open(self.path, "rb")
        except FileNotFoundError:
            self._f = None
        sources: list[tuple[str, int]] = []  # (rotated file, lines to skip) oldest first
        start = 0
        if self.opts.tail >= 0:
            wanted = self.opts.tail
            if self._f is not None:
                start, have = _tail_offset(self._f, wanted)
                wanted -= have
            for path in self.rotated:
                if wanted <= 0:
                    break
                with _open(path) as rf:
                    count = sum(block.count(b"\n") for block in line_blocks(rf))
                sources.insert(0, (path, max(0, count - wanted)))
                wanted -= count
        else:
            sources = [(p, 0) for p in reversed(self.rotated)]
        for path, skip in sources:
            try:
                rf = _open(path)
            except FileNotFoundError:
                continue
            with rf:
                for block in line_blocks(rf):
                    if skip:
                        lines = block.split(b"\n")
                        if skip >= len(lines) - 1:
                            skip -= len(lines) - 1
                            continue
                        block = b"\n".join(lines[skip:])
                        skip = 0
                    yield from self._emit(block)
                    if self.finished:
                        return
        if self._f is not None:
            self._f.seek(start)
            for block in line_blocks(self._f):
                yield from self._emit(block)
                if self.finished:
                    return

    def more(self) -> Iterator[bytes]:
        """What was appended since the last call, switching to the new file after a rotation."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if self._f is not None:
            for block in line_blocks(self._f):
                yield from self._emit(block)
                if self.finished:
                    return
            if current == os.fstat(self._f.fileno()).st_ino:
                return
            self._f.close()
            self._f = None
        if current is None:
            return
        self._f = open(self.path, "rb")
        for block in line_blocks(self._f):
            yield from self._emit(block)
            if self.finished:
                return

    def _emit(self, block: bytes) -> Iterator[bytes]:
        out, self.finished = render(block, self.opts, self.tty)
        if out:
            yield out

