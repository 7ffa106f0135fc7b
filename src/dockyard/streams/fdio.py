"""Reading and writing a non-blocking fd (a pipe or a PTY master) from the event loop."""

from __future__ import annotations

import asyncio
import errno
import os

CHUNK = 65536


async def read(fd: int) -> bytes:
    """One chunk from a non-blocking fd; b"" at EOF (EIO is how a PTY master says its slave closed)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise


async def write(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_writer(fd)
