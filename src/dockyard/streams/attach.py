"""A container's stdio through its shim's attach socket (conmon's SOCK_SEQPACKET protocol).

Each packet conmon sends is one stream id byte and the output; what the client types goes back as
packets of at most ``STDIN_PACKET`` bytes, and a shutdown of the write side is stdin's EOF."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from ..runtime.shim import STDERR as SHIM_STDERR
from .detach import Scanner
from .duplex import STDERR, STDOUT, Duplex, Encoder

STDIN_PACKET = 8192  # conmon reads one packet per read into a buffer this size and truncates longer ones
RECV = 65536


@dataclass(frozen=True)
class ContainerStdio:
    """What a container's config says of its stdio."""

    id: str
    tty: bool
    open_stdin: bool
    stdin_once: bool
    logged: bool  # it has a log to replay


@dataclass(frozen=True)
class AttachOptions:
    """What the client attaches to; its stdin reaches the process only if the container keeps it open."""

    container: ContainerStdio
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: bytes  # b"": detaching is off


async def pump(sock: socket.socket, client: Duplex, opts: AttachOptions, encode: Encoder) -> None:
    """Copy the shim's output to the client and the client's input to the shim until either ends or
    the client detaches; then both are closed (the socket only once its output is drained when the
    container's stdin must stay open)."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    detached = asyncio.Event()
    wanted = {STDOUT: opts.stdout, STDERR: opts.stderr}
    c = opts.container

    async def send(data: bytes) -> None:
        for i in range(0, len(data), STDIN_PACKET):
            await loop.sock_sendall(sock, data[i:i + STDIN_PACKET])

    async def input_pump() -> None:
        scanner = Scanner(opts.detach_keys if c.tty else b"")
        while True:
            data = await client.read()
            if not data:
                if c.tty:
                    detached.set()  # as dockerd: with a TTY, the client's EOF ends the attach, not stdin
                elif c.stdin_once or not c.open_stdin:
                    sock.shutdown(socket.SHUT_WR)  # stdin EOF reaches the process
                return
            data, done = scanner.feed(data)
            await send(data)
            if done:
                detached.set()
                return

    async def output_pump() -> None:
        while True:
            packet = await loop.sock_recv(sock, RECV)
            if not packet:
                return
            kind = STDERR if packet[0] == SHIM_STDERR else STDOUT
            if wanted[kind]:
                await client.write(encode(kind, packet[1:]))

    out_task = asyncio.create_task(output_pump())
    in_task = asyncio.create_task(input_pump()) if opts.stdin and c.open_stdin else None
    detach_task = asyncio.create_task(detached.wait())
    try:
        await asyncio.wait({out_task, detach_task}, return_when=asyncio.FIRST_COMPLETED)
    except (ConnectionError, OSError):
        pass
    finally:
        keep_stdin = not out_task.done() and c.open_stdin and c.stdin_once and not c.tty
        detach_task.cancel()
        if in_task is not None:
            in_task.cancel()
        out_task.cancel()
        if keep_stdin:
            # closing would close the container's stdin; let the output drain until the shim ends it
            loop.create_task(_drain(sock))
        else:
            sock.close()
        client.close()


async def _drain(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    try:
        while await loop.sock_recv(sock, RECV):
            pass
    finally:
        sock.close()
