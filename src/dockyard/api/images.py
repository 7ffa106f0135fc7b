"""Image routes: list, inspect, history, tag, delete, prune, load, save (get), import (create)."""

from __future__ import annotations

import asyncio
import collections
import json
import queue
import threading
from typing import Any, AsyncIterator, Callable, Iterator

from .. import errors
from ..apischema import validator
from ..httpd.server import AnyResponse, Request, Response, StreamResponse, json_response
from ..images.view import LIST_FILTERS, PRUNE_FILTERS
from ..util import filters as flt
from .backend import ImageBackend
from .router import Handler, Route, delete, get, post, version_at_least

STREAM_QUEUE = 8  # chunks buffered between a worker thread and the connection


class BodyReader:
    """A blocking file-like view of a request body, for a worker thread.

    A task on the event loop reads the body ahead while the worker reads it,
    so receiving the upload overlaps with the worker's decompression and
    extraction, and nothing is spooled to disk. Chunks pass as h11 framed
    them, under a lock rather than through a coroutine per hand-off; the
    worker's ``read`` joins what it asks for (the one copy on this side). At
    most ``PREFETCH`` bytes wait for the worker: past that the task stops
    reading, so the socket stops being read and the client is held back.
    """

    PREFETCH = 16 * 1024 * 1024

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition(threading.Lock())
        self._chunks: collections.deque[bytes | bytearray] = collections.deque()
        self._off = 0  # taken from _chunks[0]
        self._avail = 0  # bytes in _chunks not yet taken
        self._want: int | None = None  # what the waiting worker needs before it is woken
        self._end: BaseException | None = None  # set once the body ended: _EOF, or the error the worker raises
        self._room = asyncio.Event()  # cleared when the read-ahead is full; the worker sets it again
        self._room.set()
        self._pump = loop.create_task(self._fill(request))

    async def _fill(self, request: Request) -> None:
        end: BaseException = _EOF
        try:
            async for chunk in request.stream():
                with self._cond:
                    self._chunks.append(chunk)
                    self._avail += len(chunk)
                    if self._want is not None and self._avail >= self._want:
                        self._cond.notify()
                    # a worker waiting for more than the bound (read(-1)) is let through
                    full = self._avail >= self.PREFETCH and self._want is None
                    if full:
                        self._room.clear()
                if full:
                    await self._room.wait()
        except asyncio.CancelledError:
            end = errors.InvalidParameter("request body abandoned")
            raise
        except Exception as e:  # handed to the reader, which raises it in the worker
            end = e
        finally:
            with self._cond:
                self._end = end
                self._cond.notify()

    async def aclose(self) -> None:
        """Stop reading ahead (the worker gave up early), so the connection can be drained."""
        self._pump.cancel()
        await asyncio.gather(self._pump, return_exceptions=True)

    def read(self, n: int = -1) -> bytes:
        """``n`` bytes (all that is left if n < 0); fewer only at the end of the body."""
        with self._cond:
            want = n if n >= 0 else 1 << 62
            while self._avail < want and self._end is None:
                self._want = want
                if not self._room.is_set():
                    self._loop.call_soon_threadsafe(self._room.set)
                self._cond.wait()
            self._want = None
            if self._avail < want and self._end is not _EOF:
                assert self._end is not None
                raise self._end
            parts: list[bytes | bytearray | memoryview] = []
            left = min(want, self._avail)
            self._avail -= left
            while left:
                first = self._chunks[0]
                take = min(left, len(first) - self._off)
                if self._off == 0 and take == len(first):
                    self._chunks.popleft()
                    parts.append(first)
                else:
                    parts.append(memoryview(first)[self._off:self._off + take])
                    self._off += take
                    if self._off == len(first):
                        self._chunks.popleft()
                        self._off = 0
                left -= take
            if self._avail < self.PREFETCH // 2 and not self._room.is_set():
                self._loop.call_soon_threadsafe(self._room.set)
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)

    def readable(self) -> bool:
        return True


# the body ended whole (never raised: a sentinel in the reader's end slot)
_EOF = EOFError("end of request body")


async def _consume(request: Request, reader: BodyReader, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread while ``reader`` feeds it, then stop the read-ahead.

    Stopped on success too: a worker done before the body's end (a tar with trailing data) would
    leave the read-ahead parked on a full buffer forever; the HTTP layer reads away or closes the rest.
    """
    try:
        return await asyncio.to_thread(work)
    finally:
        await reader.aclose()


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def _error_line(e: BaseException) -> bytes:
    msg = str(e) if isinstance(e, errors.DockyardError) else f"{type(e).__name__}: {e}"
    return _line({"errorDetail": {"message": msg}, "error": msg})


async def _iterate_in_thread(make: Callable[[], Iterator[bytes]]) -> AsyncIterator[bytes]:
    """Run a blocking chunk generator in a thread, handing chunks over a bounded queue."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(STREAM_QUEUE)
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in make():
                while not stop.is_set():
                    try:
                        q.put(("data", chunk), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as e:  # surfaced on the loop side
            q.put(("error", e))

    thread = threading.Thread(target=work, name="image-stream", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = await asyncio.to_thread(q.get)
            if kind == "data":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()


def _config_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with an image's container config, as create's schema reads it (None: nothing)."""
    return validator.problem("POST /containers/create", config)


def routes(backend: ImageBackend, pull: Handler | None = None) -> list[Route]:
    """``pull`` serves ``POST /images/create?fromImage=`` (the distribution routes own it)."""

    async def list_images(request: Request) -> Response:
        f = flt.parse(request.q("filters"), LIST_FILTERS)
        # the pre-1.25 `filter` parameter is a reference pattern
        if request.q("filter"):
            f.setdefault("reference", []).append(request.q("filter") or "")
        # the image index is copy-on-write, read without a lock: a thread hop would cost more than the list
        rows = backend.list_images(f, request.qbool("all"), request.qbool("shared-size"), _config_problem)
        for row in rows:
            if not version_at_least(request, "1.44"):
                row["VirtualSize"] = row["Size"]
            if not request.qbool("digests") and not version_at_least(request, "1.25"):
                row.pop("RepoDigests", None)
        return json_response(rows)

    async def inspect(request: Request) -> Response:
        # off the loop: the layer chain is read from disk
        legacy = (not version_at_least(request, "1.44"), not version_at_least(request, "1.45"))
        return json_response(await asyncio.to_thread(backend.inspect_image, request.params["name"], legacy))

    async def history(request: Request) -> Response:
        return json_response(await asyncio.to_thread(backend.image_history, request.params["name"]))

    async def tag(request: Request) -> Response:
        repo = request.q("repo")
        if not repo:
            raise errors.InvalidParameter("repository name must have at least one component")
        await asyncio.to_thread(backend.tag_image, request.params["name"], repo, request.q("tag"))
        return Response(201, b"", None)

    async def remove(request: Request) -> Response:
        records = await asyncio.to_thread(backend.delete_image, request.params["name"], request.qbool("force"),
                                          not request.qbool("noprune"))
        return json_response(records)

    async def prune(request: Request) -> Response:
        f = flt.parse(request.q("filters"), PRUNE_FILTERS)
        deleted, reclaimed = await asyncio.to_thread(backend.prune_images, f)
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def load(request: Request) -> Response | StreamResponse:
        reader = BodyReader(request, asyncio.get_running_loop())
        try:
            lines = await _consume(request, reader, lambda: backend.load_images(reader))
        except errors.DockyardError as e:
            if isinstance(e, errors.InvalidParameter):
                # dockerd answers 200 and reports the failure in the JSON stream
                await request.drain()
                return Response(200, _error_line(e), "application/json")
            raise
        # `quiet` only silences progress bars, which a load from a tarball does not draw here
        body = b"".join(_line({"stream": line + "\n"}) for line in lines)
        return Response(200, body, "application/json")

    async def save_one(request: Request) -> StreamResponse:
        return _save(request, [request.params["name"]])

    async def save_many(request: Request) -> StreamResponse:
        names = request.qlist("names")
        if not names:
            raise errors.InvalidParameter("no image names given")
        return _save(request, names)

    def _save(request: Request, names: list[str]) -> StreamResponse:
        # resolved now so a missing image is a 404 before the stream starts
        for name in names:
            backend.image_exists(name)
        return StreamResponse(_iterate_in_thread(lambda: backend.save_images(names)), content_type="application/x-tar")

    async def create(request: Request) -> AnyResponse:
        src = request.q("fromSrc")
        if not src:
            if pull is not None:
                return await pull(request)
            raise errors.InvalidParameter("fromSrc or fromImage is required")
        if src != "-":
            raise errors.InvalidParameter(f"importing from a URL ({src}) is not supported: no network access")
        changes = request.qlist("changes")
        reader = BodyReader(request, asyncio.get_running_loop())
        try:
            image_id = await _consume(request, reader, lambda: backend.import_image(
                reader, request.q("repo"), request.q("tag"), changes, request.q("message") or "", src))
        except errors.InvalidParameter as e:
            await request.drain()
            return Response(200, _error_line(e), "application/json")
        return Response(200, _line({"status": image_id}), "application/json")

    return [
        get("/images/json", list_images),
        post("/images/load", load),
        get("/images/get", save_many),
        post("/images/prune", prune, min_version="1.25"),
        post("/images/create", create),
        get("/images/{name:.*}/json", inspect),
        get("/images/{name:.*}/history", history),
        get("/images/{name:.*}/get", save_one),
        post("/images/{name:.*}/tag", tag),
        delete("/images/{name:.*}", remove),
    ]
