"""Blocking engine work in a thread, its progress relayed to the client as a stream of JSON lines."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Awaitable, Callable

from ..errors import DockyardError
from .http import AnyResponse, StreamResponse

Emit = Callable[[dict[str, Any]], None]
Work = Callable[[Emit, threading.Event], None]
_DONE = object()


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
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def emit(msg: dict[str, Any]) -> None:
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

    async def chunks() -> AsyncIterator[bytes]:
        item = first
        try:
            while item is not _DONE:
                if isinstance(item, BaseException):
                    yield error_line(item)
                    return
                yield line(item)
                item = await queue.get()
        finally:
            cancel.set()
            if close is not None:
                await close()

    return StreamResponse(chunks())
