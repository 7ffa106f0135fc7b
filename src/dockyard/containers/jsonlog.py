"""The json-file logging driver: the shim's journal turned into dockerd's ``<id>-json.log``.

conmon (the shim) appends every piece of output to a journal in its k8s-file
format (``<RFC3339Nano+00:00> <stdout|stderr> <F|P> <payload>``), whether or
not dockyardd is up, so no line is lost while the daemon is down. The daemon
copies the journal into json-file lines exactly as dockerd writes them
(``{"log":"…\\n","stream":"stdout","time":"…Z"}``), rotating by ``max-size``
/ ``max-file`` (``compress`` gzips rotated files), and records how far it got in
``json-log.pos``; after a restart it resumes from there. Copied parts of the
journal are punched out (the file becomes sparse) while the shim still writes to
it, and the journal is emptied once the container has exited and all of it is
copied. See docs/decisions.md for the figures that chose this shape.

A container may also have a mirror (a CRI pod container's, the kubelet's ``log_path``): the journal's
lines, already in the CRI's format, are appended there as they are copied, with the path opened for
each batch so that the kubelet's rotation (rename, then ReopenContainerLog) needs nothing more.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import gzip
import json
import logging
import os
import re
import shutil
import threading
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from .. import errors
from ..util.iterio import READ_CHUNK, line_blocks
from ..util.timefmt import go_time

log = logging.getLogger("dockyard.containers")

JOURNAL = "journal.k8s"
POSITION = "json-log.pos"
PUNCH_EVERY = 4 << 20
COPY_INTERVAL = 0.25
PARTIAL_LIMIT = 16 * 1024  # dockerd splits longer lines into partial messages of this size

DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = frozenset({"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex",
                            "tag", "mode", "max-buffer-size"})

# Lines that need no escaping, no time-zone conversion and end a line (F): the common case, done in bulk.
_PLAIN_BLOCK = re.compile(rb"(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00 std(?:out|err) F [^\n]*\n)*")
_PARTIAL_ENTRY = re.compile(rb"^[^ \n]* std(?:out|err) P ", re.M)
_NEEDS_ESCAPE = re.compile(rb'[\x00-\x09\x0b-\x1f"\\<>&\x80-\xff]')
# Go's encoding as moby's jsonlog writes strings: <, > and & escaped, other controls as \u00XX.
_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
                 ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028",
                 0x2029: "\\u2029"})


@dataclass(frozen=True)
class Policy:
    """What ``--log-opt`` asks of the json-file driver."""

    max_size: int = -1  # bytes; -1: never rotate
    max_file: int = 1
    compress: bool = False


def validate(log_config: dict) -> Policy | None:
    """The policy of a container's ``HostConfig.LogConfig``, None for the ``none`` driver; 400s name the option."""
    kind = log_config.get("Type") or "json-file"
    opts = log_config.get("Config") or {}
    if kind not in DRIVERS:
        raise errors.InvalidParameter(f"logger: no log driver named '{kind}' is registered")
    if kind == "none":
        if opts:
            raise errors.InvalidParameter(f"unknown log opt '{next(iter(opts))}' for none log driver")
        return None
    for key in opts:
        if key not in JSON_FILE_OPTS:
            raise errors.InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    max_size = parse_size(opts.get("max-size", "")) if opts.get("max-size") else -1
    max_file = 1
    if opts.get("max-file"):
        try:
            max_file = int(opts["max-file"])
        except ValueError:
            raise errors.InvalidParameter(f"invalid max-file: {opts['max-file']}") from None
        if max_file < 1:
            raise errors.InvalidParameter("max-file cannot be less than 1")
    compress = False
    if opts.get("compress"):
        value = str(opts["compress"]).lower()
        if value not in ("1", "t", "true", "0", "f", "false"):
            raise errors.InvalidParameter(f"error enabling log compression: invalid syntax: {opts['compress']}")
        compress = value in ("1", "t", "true")
        if compress and max_file <= 1:
            raise errors.InvalidParameter("compress cannot be true when max-file is less than 2")
    return Policy(max_size, max_file, compress)


def parse_size(value: str) -> int:
    """``10m``, ``1k``, ``512`` as docker's units.FromHumanSize for log sizes (binary multiples)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", value.lower())
    if not m:
        raise errors.InvalidParameter(f"invalid max-size: {value}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    size = int(float(m.group(1)) * mult)
    if size <= 0:
        raise errors.InvalidParameter(f"invalid max-size: {value}")
    return size


def encode_string(payload: bytes) -> bytes:
    return payload.decode("utf-8", "replace").translate(_ESCAPES).encode("utf-8")


def _json_line(payload: bytes, stream: bytes, stamp: bytes, newline: bool) -> bytes:
    text = encode_string(payload) + (b"\\n" if newline else b"")
    return b'{"log":"%s","stream":"%s","time":"%s"}\n' % (text, stream, go_time(stamp))


def _complete_entries(block: bytes) -> list[bytes]:
    """json-file lines for journal entries that are all whole lines (F), one per journal line."""
    if _PLAIN_BLOCK.fullmatch(block) and not _NEEDS_ESCAPE.search(block, 0):
        lines = block.split(b"\n")
        lines.pop()
        return [b'{"log":"%s\\n","stream":"%s","time":"%sZ"}\n'
                % (line[45:], line[36:42], line[:29].rstrip(b"0").rstrip(b".")) for line in lines]
    out = []
    for line in block.split(b"\n")[:-1]:
        parts = line.split(b" ", 3)
        if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
            out.append(b"")  # not an entry conmon writes; keeps lines and entries one to one
            continue
        out.append(_json_line(parts[3] if len(parts) > 3 else b"", parts[1], parts[0], parts[2] == b"F"))
    return out


class Converter:
    """Journal entries → json-file lines, one per line of output as dockerd logs them.

    conmon writes the last piece of each read without a newline as a partial
    (``P``) entry; it is held until the stream's line completes (or reaches
    dockerd's 16 KiB message limit, or the container ends), so a line is one
    json-file entry whatever the pipe reads were.
    """

    def __init__(self, pending: dict[str, tuple[bytes, bytes]] | None = None) -> None:
        self.pending: dict[str, tuple[bytes, bytes]] = pending or {}  # stream → (first piece's time, bytes)

    def convert(self, block: bytes) -> list[bytes]:
        """Lines for a block of complete journal entries, one per journal line (empty where nothing is due)."""
        out: list[bytes] = []
        pos, n = 0, len(block)
        while pos < n:
            if not self.pending:
                m = _PARTIAL_ENTRY.search(block, pos)
                stop = m.start() if m else n
                if stop > pos:
                    out += _complete_entries(block[pos:stop])
                    pos = stop
                if m is None:
                    break
            end = block.index(b"\n", pos) + 1
            out.append(self._entry(block[pos:end - 1]))
            pos = end
        return out

    def _entry(self, line: bytes) -> bytes:
        parts = line.split(b" ", 3)
        if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
            return b""
        stream = parts[1].decode()
        stamp, held = self.pending.pop(stream, (parts[0], b""))
        payload = held + (parts[3] if len(parts) > 3 else b"")
        if parts[2] == b"P" and len(payload) < PARTIAL_LIMIT:
            self.pending[stream] = (stamp, payload)
            return b""
        return _json_line(payload, parts[1], stamp, parts[2] != b"P")

    def flush(self) -> list[bytes]:
        """The held pieces as entries without a newline (the output ended there)."""
        out = [_json_line(payload, stream.encode(), stamp, False) for stream, (stamp, payload) in self.pending.items()]
        self.pending.clear()
        return out


def rotated_paths(path: str, max_file: int, compress: bool) -> list[str]:
    """The rotated files, newest first (``<id>-json.log.1[.gz]`` ...)."""
    out = []
    for i in range(1, max(max_file, 1)):
        for candidate in (f"{path}.{i}.gz", f"{path}.{i}"):
            if os.path.exists(candidate):
                out.append(candidate)
                break
    return out


class Copier:
    """Copies one container's journal into its json-file log; every method is safe to call from any thread."""

    def __init__(self, directory: str, json_path: str, policy: Policy, mirror: str = "") -> None:
        self.journal = os.path.join(directory, JOURNAL)
        self.json_path = json_path
        self.policy = policy
        self.mirror = mirror
        self._pos_path = os.path.join(directory, POSITION)
        self._lock = threading.Lock()
        self._offset, self._size = 0, 0
        self._converter = Converter()
        self._load_position()
        self._punched = 0

    def _load_position(self) -> None:
        try:
            with open(self._pos_path, encoding="ascii") as f:
                data = json.load(f)
            self._offset, self._size = int(data["journal"]), int(data["size"])
            self._converter.pending = {stream: (stamp.encode(), base64.b64decode(held))
                                       for stream, (stamp, held) in (data.get("pending") or {}).items()}
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _save_position(self) -> None:
        """Where the copy is: journal offset, json-file size, and pieces of lines held (see Converter)."""
        pending = {stream: [stamp.decode(), base64.b64encode(held).decode()]
                   for stream, (stamp, held) in self._converter.pending.items()}
        tmp = self._pos_path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            json.dump({"journal": self._offset, "size": self._size, "pending": pending}, f)
        os.replace(tmp, self._pos_path)

    def sync(self) -> None:
        """Copy every complete journal entry not copied yet."""
        with self._lock:
            try:
                self._sync_locked()
            except FileNotFoundError:
                pass  # removed meanwhile

    def finish(self) -> None:
        """The shim is gone: copy what is left and empty the journal for the next start."""
        with self._lock:
            try:
                self._sync_locked()
            except FileNotFoundError:
                pass  # no journal: nothing to copy, but a stale offset must still go
            try:
                if self._converter.pending:
                    with open(self.json_path, "ab") as out:
                        self._write(out, self._converter.flush(), b"").close()
                with open(self.journal, "r+b") as j:
                    j.truncate(0)
            except FileNotFoundError:
                pass
            self._offset = 0
            self._punched = 0
            try:
                self._save_position()
            except FileNotFoundError:
                pass  # the container was removed meanwhile
            except OSError as e:  # a full disk: the position in memory is right, the next save writes it
                log.warning("saving the log position of %s: %s", self.json_path, e)

    def before_start(self) -> None:
        """A new shim is about to append to the journal: whatever an earlier run left (the daemon was down
        when it ended, or was killed while emptying the journal) is copied and the journal emptied first, so
        the new run's lines are never truncated away or skipped by a stale offset."""
        with self._lock:
            try:
                size = os.path.getsize(self.journal)
            except FileNotFoundError:
                size = 0
            if size == 0 and self._offset == 0 and not self._converter.pending:
                return
        self.finish()

    def _sync_locked(self) -> None:
        with open(self.journal, "rb") as j:
            end = os.fstat(j.fileno()).st_size
            if end < self._offset:  # emptied behind our back: start over
                self._offset = 0
            if end == self._offset:
                return
            out = open(self.json_path, "ab")
            try:
                if out.tell() > self._size:
                    out.truncate(self._size)  # lines written before a crash that the position does not cover
                    out.seek(self._size)
                self._size = out.tell()
                j.seek(self._offset)
                mirror = self._open_mirror()
                try:
                    for block in line_blocks(j):
                        self._to_mirror(mirror, block)
                        out = self._write(out, self._converter.convert(block), block)
                finally:
                    if mirror is not None:
                        mirror.close()
            finally:
                out.close()
            self._punch(j.fileno())

    def _open_mirror(self) -> BinaryIO | None:
        if not self.mirror:
            return None
        try:
            fd = os.open(self.mirror, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as e:  # the kubelet's directory went (pod removed): docker logs keeps the lines
            log.warning("writing the log mirror %s: %s", self.mirror, e)
            return None
        return os.fdopen(fd, "ab")

    def _to_mirror(self, mirror: BinaryIO | None, block: bytes) -> None:
        if mirror is None:
            return
        try:
            mirror.write(block)
            mirror.flush()
        except OSError as e:  # a full disk: the json-file copy goes on
            log.warning("writing the log mirror %s: %s", self.mirror, e)

    def _write(self, out: BinaryIO, lines: list[bytes], block: bytes) -> BinaryIO:
        """Append the lines converted from the journal block (rotating as the policy says); returns the
        file now open for appending."""
        max_size = self.policy.max_size
        if max_size < 0:
            payload = b"".join(lines)
            out.write(payload)
            out.flush()
            self._size += len(payload)
            self._offset += len(block)
            self._save_position()
            return out
        # entry by entry around the limit: dockerd rotates before a write once the file reached max-size;
        # the position is saved after each piece, so a crash while rotating duplicates nothing
        journal_lines = block.split(b"\n") if block else [b""] * len(lines)
        i = 0
        while i < len(lines):
            if self._size >= max_size:
                out.close()
                self._rotate()
                out = open(self.json_path, "ab")
                self._size = 0
                self._save_position()
            start, taken = i, 0
            while i < len(lines) and taken < max_size - self._size:
                taken += len(lines[i])
                i += 1
            out.write(b"".join(lines[start:i]))
            out.flush()
            self._size += taken
            if block:
                self._offset += sum(len(x) + 1 for x in journal_lines[start:i])
            self._save_position()
        return out

    def _rotate(self) -> None:
        policy = self.policy
        path = self.json_path
        if policy.max_file <= 1:
            open(path, "wb").close()
            return
        for i in range(policy.max_file - 1, 0, -1):
            for ext in (".gz", ""):
                src = f"{path}.{i}{ext}"
                if not os.path.exists(src):
                    continue
                if i == policy.max_file - 1:
                    os.unlink(src)
                else:
                    os.replace(src, f"{path}.{i + 1}{ext}")
        # renamed before it is compressed: a crash in between leaves a plain rotated file (readers take
        # either), never the same lines in both the live file and a rotated one
        os.replace(path, f"{path}.1")
        if policy.compress:
            with open(f"{path}.1", "rb") as src_f, gzip.open(f"{path}.1.gz.tmp", "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src_f, dst, READ_CHUNK)
            os.replace(f"{path}.1.gz.tmp", f"{path}.1.gz")
            os.unlink(f"{path}.1")

    def _punch(self, fd: int) -> None:
        upto = self._offset & ~0xFFF
        if upto - self._punched < PUNCH_EVERY:
            return
        if _punch_hole(fd, 0, upto):
            self._punched = upto

    def remove_files(self) -> None:
        with self._lock:
            for p in [self.json_path, *rotated_paths(self.json_path, self.policy.max_file, True)]:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass


_libc = ctypes.CDLL(None, use_errno=True)
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 0x01, 0x02


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """Free the disk blocks of a range while the file keeps its size (the shim appends at the end)."""
    res = _libc.fallocate(ctypes.c_int(fd), ctypes.c_int(_FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE),
                          ctypes.c_long(offset), ctypes.c_long(length))
    if res != 0:
        err = ctypes.get_errno()
        if err not in (errno.EOPNOTSUPP, errno.ENOSYS):
            log.debug("punching the journal: %s", os.strerror(err))
        return False
    return True


class CopyLoop:
    """One thread that keeps the json-file logs of running containers up to date."""

    def __init__(self, interval: float = COPY_INTERVAL) -> None:
        self._interval = interval
        self._copiers: dict[str, Copier] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-copier", daemon=True)
        self._thread.start()

    def add(self, container_id: str, copier: Copier) -> None:
        with self._lock:
            self._copiers[container_id] = copier

    def discard(self, container_id: str) -> None:
        with self._lock:
            self._copiers.pop(container_id, None)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                copiers: Iterable[Copier] = list(self._copiers.values())
            for copier in copiers:
                try:
                    copier.sync()
                except Exception:
                    log.exception("copying the log of %s", copier.json_path)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
