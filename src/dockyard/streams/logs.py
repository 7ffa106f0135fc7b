"""A container's log as a byte stream: the backlog read in a thread, then followed while it runs."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable, Iterator, Protocol

FOLLOW_POLL = 0.05  # seconds between looks at a followed log


class LogSource(Protocol):
    opts: Any  # its until_ns bounds a followed log (0: none)
    finished: bool  # an entry past ``until`` was reached

    def backlog(self) -> Iterator[bytes]: ...
    def more(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


async def backlog(reader: LogSource) -> AsyncIterator[bytes]:
    """What the log holds now, block by block (a log of gigabytes is never held whole)."""
    chunks = reader.backlog()
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


async def stream(reader: LogSource, follow: bool, running: Callable[[], bool],
                 sync: Callable[[], None]) -> AsyncIterator[bytes]:
    """The backlog, then (``follow``) what the container writes until it stops; ``sync`` brings the
    log up to date with what the shim recorded. The reader is closed at the end."""
    try:
        async for chunk in backlog(reader):
            yield chunk
        while follow and not reader.finished:
            was_running = running()
            await asyncio.to_thread(sync)
            for chunk in await asyncio.to_thread(lambda: list(reader.more())):
                yield chunk
            if not was_running or (reader.opts.until_ns and time.time_ns() > reader.opts.until_ns):
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        reader.close()
