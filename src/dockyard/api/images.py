"""Image routes: list, inspect, history, tag, delete, prune, load, save (get), import (create)."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from typing import Any, AsyncIterator, Callable, Iterator

from .. import errors
from ..engine.engine import Engine
from ..images.store import Image
from . import filters as flt
from .http import AnyResponse, Request, Response, StreamResponse, json_response
from .router import Handler, Route, delete, get, post, version_at_least

LIST_FILTERS = frozenset({"dangling", "reference", "label", "before", "since", "until"})
PRUNE_FILTERS = frozenset({"dangling", "until", "label", "label!"})
STREAM_QUEUE = 8  # chunks buffered between a worker thread and the connection


class BodyReader:
    """A blocking file-like view of a request body, for a worker thread.

    A task on the event loop reads the body ahead into a bounded queue, so
    receiving the upload overlaps with the worker's decompression and
    extraction, and nothing is spooled to disk.
    """

    PREFETCH = 16  # hand-offs read ahead
    HANDOFF = 1024 * 1024

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(self.PREFETCH)
        self._pump = loop.create_task(self._fill(request))
        self._buf = bytearray()
        self._eof = False

    async def _fill(self, request: Request) -> None:
        try:
            # Clients send small chunks (Go writes 32 KiB); hand the worker big ones.
            pending: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                pending.append(chunk)
                size += len(chunk)
                if size >= self.HANDOFF:
                    await self._queue.put(b"".join(pending))
                    pending, size = [], 0
            if pending:
                await self._queue.put(b"".join(pending))
            await self._queue.put(b"")
        except Exception as e:  # handed to the reader, which raises it in the worker
            await self._queue.put(e)

    async def aclose(self) -> None:
        """Stop reading ahead (the worker gave up early), so the connection can be drained."""
        self._pump.cancel()
        await asyncio.gather(self._pump, return_exceptions=True)

    def _next(self) -> bytes:
        item = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
        if isinstance(item, BaseException):
            raise item
        return item

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = self._next()
            if not chunk:
                self._eof = True
                break
            self._buf += chunk
        if n < 0 or n >= len(self._buf):
            data = bytes(self._buf)
            self._buf.clear()
        else:
            data = bytes(self._buf[:n])
            del self._buf[:n]
        return data

    def readable(self) -> bool:
        return True


async def _consume(request: Request, reader: BodyReader, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread while ``reader`` feeds it; on failure, read the rest of the body away."""
    try:
        return await asyncio.to_thread(work)
    except BaseException:
        await reader.aclose()
        raise


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


def image_inspect(engine: Engine, image: Image, request: Request) -> dict[str, Any]:
    cfg = image.config
    container_config = cfg.get("config") or {}
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent,
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created") or "0001-01-01T00:00:00Z",
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": _image_config(container_config),
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "GraphDriver": _graph_driver(engine, image),
        "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": _rfc3339(image.last_tag_time) if image.last_tag_time
                     else "0001-01-01T00:00:00Z"},
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    if cfg.get("os.version"):
        out["OsVersion"] = cfg["os.version"]
    if not version_at_least(request, "1.44"):
        out["VirtualSize"] = image.size
    if not version_at_least(request, "1.45"):
        out["Container"] = cfg.get("container", "")
        out["ContainerConfig"] = _image_config(cfg.get("container_config") or {})
    return out


def _image_config(c: dict[str, Any]) -> dict[str, Any]:
    keys = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Volumes", "WorkingDir",
            "Entrypoint", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell")
    out = {k: c[k] for k in keys if c.get(k) is not None}
    out.setdefault("Env", None)
    out.setdefault("Cmd", None)
    out.setdefault("Entrypoint", None)
    out.setdefault("WorkingDir", "")
    out.setdefault("User", "")
    out.setdefault("Labels", None)
    out.setdefault("OnBuild", None)
    out.setdefault("Volumes", None)
    return out


def _graph_driver(engine: Engine, image: Image) -> dict[str, Any]:
    name = engine.snapshotter.name
    if not image.chain_ids:
        return {"Name": name, "Data": None}
    dirs = engine.images.layer_chain(image.id)
    top = dirs[-1]
    layer_dir = top.rsplit("/", 1)[0]
    if name != "overlay2":
        return {"Name": name, "Data": {"Dir": top}}
    data = {"MergedDir": layer_dir + "/merged", "UpperDir": top, "WorkDir": layer_dir + "/work"}
    if len(dirs) > 1:
        data["LowerDir"] = ":".join(reversed(dirs[:-1]))
    return {"Name": name, "Data": data}


def _rfc3339(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def routes(engine: Engine, pull: Handler | None = None) -> list[Route]:
    """``pull`` serves ``POST /images/create?fromImage=`` (the distribution routes own it)."""
    svc = engine.images

    async def list_images(request: Request) -> Response:
        f = flt.parse(request.q("filters"), LIST_FILTERS)
        # the pre-1.25 `filter` parameter is a reference pattern
        if request.q("filter"):
            f.setdefault("reference", []).append(request.q("filter") or "")
        dangling = flt.bool_value(f.get("dangling", []), "dangling")
        until = flt.parse_timestamp(f["until"][-1], "until") if f.get("until") else None
        images = svc.list(all_images=request.qbool("all"), dangling=dangling, references=f.get("reference"),
                          labels=f.get("label"), before=(f.get("before") or [None])[-1],
                          since=(f.get("since") or [None])[-1], until_ns=until)
        with_shared = request.qbool("shared-size")
        counts = svc.layer_use_counts() if with_shared else None
        out = []
        for image in images:
            s = svc.summary(image, shared_size=svc.shared_size(image, counts) if with_shared else -1)
            if not version_at_least(request, "1.44"):
                s["VirtualSize"] = image.size
            if not request.qbool("digests") and not version_at_least(request, "1.25"):
                s.pop("RepoDigests", None)
            out.append(s)
        return json_response(out)

    async def inspect(request: Request) -> Response:
        image = svc.resolve(request.params["name"])
        return json_response(image_inspect(engine, image, request))

    async def history(request: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.history, request.params["name"]))

    async def tag(request: Request) -> Response:
        repo = request.q("repo")
        if not repo:
            raise errors.InvalidParameter("repository name must have at least one component")
        await asyncio.to_thread(svc.tag, request.params["name"], repo, request.q("tag"))
        return Response(201, b"", None)

    async def remove(request: Request) -> Response:
        records = await asyncio.to_thread(svc.delete, request.params["name"], request.qbool("force"),
                                          not request.qbool("noprune"))
        return json_response(records)

    async def prune(request: Request) -> Response:
        f = flt.parse(request.q("filters"), PRUNE_FILTERS)
        dangling = flt.bool_value(f.get("dangling", []), "dangling")
        until = flt.parse_timestamp(f["until"][-1], "until") if f.get("until") else None
        deleted, reclaimed = await asyncio.to_thread(svc.prune, True if dangling is None else dangling, until,
                                                     f.get("label"), f.get("label!"))
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def load(request: Request) -> Response | StreamResponse:
        reader = BodyReader(request, asyncio.get_running_loop())
        try:
            lines = await _consume(request, reader, lambda: svc.load(reader))
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
        # resolve now so a missing image is a 404 before the stream starts
        for name in names:
            svc.resolve(name)
        return StreamResponse(_iterate_in_thread(lambda: svc.save(names)), content_type="application/x-tar")

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
            image = await _consume(request, reader, lambda: svc.import_image(
                reader, request.q("repo"), request.q("tag"), changes, request.q("message") or "", src))
        except errors.InvalidParameter as e:
            await request.drain()
            return Response(200, _error_line(e), "application/json")
        return Response(200, _line({"status": image.id}), "application/json")

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
