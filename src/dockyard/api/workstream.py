"""Blocking engine work in a thread, its progress relayed to the client as a stream of JSON lines."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable

from ..errors import DockyardError
from ..httpd.server import AnyResponse, StreamResponse

Emit = Callable[[dict[str, Any]], None]
Work = Callable[[Emit, threading.Event], None]
_DONE = object()
# Messages waiting for the client: past this the worker's emit waits, so a client that
# reads slowly (or not at all) holds the work back instead of growing the daemon.
MAX_PENDING = 256


def error_message(e: BaseException) -> str:
    """An error's text in the stream: the engine's own wording, else the exception's type and text."""
    return str(e) if isinstance(e, DockyardError) else f"{type(e).__name__}: {e}"


async def progress_stream(work: Work, line: Callable[[dict[str, Any]], bytes],
                          error_line: Callable[[BaseException], bytes],
                          close: Callable[[], Awaitable[None]] | None = None) -> AnyResponse:
    """Run ``work(emit, cancel)`` in a thread, each message it emits written with ``line``.

    Like dockerd, an error raised before the first message becomes the HTTP
    status of the answer; later errors go into the stream with ``error_line``.
    A client that goes away sets ``cancel``. ``close`` runs once the answer is
    settled either way (e.g. to release the request body the work reads).
    At most ``MAX_PENDING`` messages wait for the client; once it has gone,
    ``emit`` drops them.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()
    room = threading.Semaphore(MAX_PENDING)

    def emit(msg: dict[str, Any]) -> None:
        while not room.acquire(timeout=0.5):
            if cancel.is_set():
                return
        loop.call_soon_threadsafe(queue.put_nowait, msg)

    def run() -> None:
        try:
            work(emit, cancel)
        except BaseException as e:  # handed over to the event loop, which reports it
            loop.call_soon_threadsafe(queue.put_nowait, e)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    threading.Thread(target=run, name="progress-work", daemon=True).start()
    first = await queue.get()
    if isinstance(first, BaseException):
        if close is not None:
            await close()
        raise first

    return StreamResponse(_Progress(first, queue, room, cancel, line, error_line, close))


class _Progress:
    """The stream's chunks. Closing it cancels the work even if it was never iterated
    (a HEAD request, a client gone before the head was sent), which an async
    generator's ``finally`` would not do; the HTTP server closes every stream it is given."""

    def __init__(self, first: Any, queue: asyncio.Queue[Any], room: threading.Semaphore, cancel: threading.Event,
                 line: Callable[[dict[str, Any]], bytes], error_line: Callable[[BaseException], bytes],
                 close: Callable[[], Awaitable[None]] | None) -> None:
        self._next: Any = first
        self._queue = queue
        self._room = room
        self._cancel = cancel
        self._line = line
        self._error_line = error_line
        self._close = close
        self._ended = False

    def __aiter__(self) -> "_Progress":
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            await self.aclose()
            raise StopAsyncIteration
        item = self._next if self._next is not None else await self._queue.get()
        self._next = None
        if item is _DONE:
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._ended = True
            return self._error_line(item)
        self._room.release()
        return self._line(item)

    async def aclose(self) -> None:
        self._ended = True
        self._cancel.set()
        close, self._close = self._close, None
        if close is not None:
            await close()
