"""Interactive streams: the hijacked connection of attach (and exec start), and the terminal around it.

The docker CLI's ``hijack.go`` re-made: the request is sent on a socket of
our own (``Connection: Upgrade``, ``Upgrade: tcp``), so no byte the daemon
sends right after ``101 UPGRADED`` can stay behind in an HTTP library's
buffer. Output is copied raw with a TTY and demultiplexed (8-byte frame
headers) without; stdin is copied until EOF, which half-closes the socket so
the process sees its stdin end. With a TTY the local terminal goes to raw
mode, its size follows SIGWINCH to the resize API, and the detach keys
(``ctrl-p,ctrl-q`` by default) end the session locally as docker does.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import termios
import threading
import time
import tty
from typing import Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit

import docker

from .command import CliError
from .connection import ConnectionError_, cannot_connect, resolve_host, tls_config

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


class Detached(Exception):
    """The user typed the detach keys."""


def detach_sequence(spec: str) -> bytes:
    """``ctrl-p,ctrl-q`` → ``b"\\x10\\x11"`` (docker's term.ToBytes)."""
    out = bytearray()
    for key in filter(None, (k.strip() for k in spec.split(","))):
        low = key.lower()
        if low.startswith("ctrl-") and len(low) == 6:
            ch = low[5]
            special = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if ch in special:
                out.append(special[ch])
            elif "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            else:
                raise CliError(f"Invalid detach keys ({spec}) provided", 125)
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise CliError(f"Invalid detach keys ({spec}) provided", 125)
    return bytes(out)


def _connect(cli: Any) -> socket.socket:
    host = resolve_host(cli.opts)
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(host[len("unix://"):])
            return sock
        url = urlsplit(host.replace("tcp://", "https://" if tls_config(cli.opts) else "http://", 1))
        raw = socket.create_connection((url.hostname, url.port or 2375))
    except OSError as e:
        raise ConnectionError_(cannot_connect(host, e)) from None
    tls = tls_config(cli.opts)
    if tls is None:
        return raw
    ctx = ssl.create_default_context(cafile=tls.ca_cert) if tls.verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert:
        ctx.load_cert_chain(*tls.cert)
    return ctx.wrap_socket(raw, server_hostname=url.hostname)


class Hijacked:
    """A hijacked connection: ``recv`` starts with any bytes read past the response head."""

    def __init__(self, sock: socket.socket, early: bytes) -> None:
        self.sock = sock
        self.early = early

    def recv(self) -> bytes:
        if self.early:
            data, self.early = self.early, b""
            return data
        try:
            return self.sock.recv(65536)
        except (ConnectionError, OSError):
            return b""

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            if isinstance(self.sock, ssl.SSLSocket):
                return  # no half-close under TLS without ending the whole session
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def hijack(cli: Any, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Hijacked:
    """POST ``path`` asking for an upgrade; daemon errors raise docker-py's APIError like any call."""
    api = cli.client.api
    target = urlsplit(api._url(path)).path
    if params:
        target += "?" + urlencode(params)
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"POST {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockyard-cli\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    sock = _connect(cli)
    sock.sendall(head + payload)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            sock.close()
            raise ConnectionError_("error during connect: connection closed before the response")
        buf += chunk
    head_bytes, _, rest = buf.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    if status in (101, 200):
        return Hijacked(sock, rest)
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    try:
        message = json.loads(rest.decode()).get("message", "")
    except ValueError:
        message = rest.decode(errors="replace").strip()
    _raise(status, message)
    raise AssertionError("unreachable")


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = ""


def _raise(status: int, message: str) -> None:
    err_cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    raise err_cls(message, response=_Response(status), explanation=message)  # type: ignore[arg-type]


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The local terminal in raw mode for the session, restored afterwards."""
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> tuple[int, int]:
    """(height, width) of the terminal on ``fd``."""
    size = os.get_terminal_size(fd)
    return size.lines, size.columns


@contextlib.contextmanager
def follow_resize(fd: int, resize: Callable[[int, int], None]) -> Iterator[None]:
    """Send the size now and on each SIGWINCH (docker's MonitorTtySize)."""

    def send(*_: Any) -> bool:
        try:
            resize(*terminal_size(fd))
            return True
        except Exception:
            return False

    # the process may not be up yet: retry as docker's initTtySize does
    for attempt in range(10):
        if send():
            break
        time.sleep(0.01 * (attempt + 1))
    previous = signal.signal(signal.SIGWINCH, send)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def copy_output(conn: Hijacked, tty_mode: bool, out_fd: int, err_fd: int) -> None:
    """Daemon → local stdout/stderr until the daemon ends the stream."""
    buf = b""
    while True:
        data = conn.recv()
        if not data:
            return
        if tty_mode:
            _write_all(out_fd, data)
            continue
        buf += data
        while len(buf) >= 8:
            kind, length = buf[0], struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + length:
                break
            payload, buf = buf[8:8 + length], buf[8 + length:]
            _write_all(err_fd if kind == 2 else out_fd, payload)


def copy_input(conn: Hijacked, in_fd: int, detach: bytes, stop: threading.Event) -> bool:
    """Local stdin → daemon until EOF (then half-close); True when the detach keys were typed."""
    matched = b""
    while not stop.is_set():
        ready, _, _ = select.select([in_fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(in_fd, 65536)
        except OSError:
            data = b""
        if not data:
            conn.close_write()
            return False
        if detach:
            # hold back a partial match of the detach keys until the next byte decides (docker's EscapeProxy)
            out = bytearray()
            for byte in data:
                if byte == detach[len(matched)]:
                    matched += bytes([byte])
                    if len(matched) == len(detach):
                        # the keys go to the daemon too: it then detaches its end without closing the stdin
                        with contextlib.suppress(OSError):
                            conn.sock.sendall(bytes(out) + matched)
                        return True
                    continue
                out += matched
                matched = b""
                out.append(byte)
            data = bytes(out)
        if data:
            try:
                conn.sock.sendall(data)
            except OSError:
                return False
    return False


def stream(conn: Hijacked, *, tty_mode: bool, stdin: bool, detach_keys: bytes) -> bool:
    """Run the session until output ends or the user detaches; returns True if detached."""
    out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    sys.stdout.flush()
    sys.stderr.flush()
    stop = threading.Event()
    detached = threading.Event()
    done = threading.Event()

    def reader() -> None:
        try:
            copy_output(conn, tty_mode, out_fd, err_fd)
        except OSError:
            pass
        finally:
            done.set()

    def writer() -> None:
        if copy_input(conn, sys.stdin.fileno(), detach_keys if tty_mode else b"", stop):
            detached.set()
            done.set()

    out_thread = threading.Thread(target=reader, daemon=True)
    out_thread.start()
    in_thread = threading.Thread(target=writer, daemon=True) if stdin else None
    if in_thread is not None:
        in_thread.start()
    while not done.wait(0.5):
        pass
    stop.set()
    if detached.is_set():
        conn.close()
        return True
    out_thread.join()
    conn.close()
    return False


@contextlib.contextmanager
def session_terminal(use_tty: bool, resize: Callable[[int, int], None]) -> Iterator[None]:
    """Raw mode on stdin and resize following, when there is a terminal and the container has a TTY."""
    fd = sys.stdin.fileno()
    if not (use_tty and os.isatty(fd)):
        yield
        return
    with raw_terminal(fd), follow_resize(sys.stdout.fileno() if os.isatty(sys.stdout.fileno()) else fd, resize):
        yield


@contextlib.contextmanager
def proxy_signals(kill: Callable[[int], None], enabled: bool) -> Iterator[None]:
    """docker's --sig-proxy: signals this process receives go to the container."""
    if not enabled:
        yield
        return
    forwarded = [s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                             signal.SIGUSR2) if s is not None]

    def forward(signum: int, _frame: Any) -> None:
        threading.Thread(target=lambda: _quiet(kill, signum), daemon=True).start()

    previous = {s: signal.signal(s, forward) for s in forwarded}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _quiet(fn: Callable[[int], None], arg: int) -> None:
    with contextlib.suppress(Exception):
        fn(arg)
