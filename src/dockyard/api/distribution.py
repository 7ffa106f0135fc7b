"""Registry routes: pull (``POST /images/create?fromImage=``), push, ``/auth``, distribution inspect."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, AsyncIterator, Callable

from ..distribution.auth import AuthConfig
from ..distribution.names import from_image_and_tag
from ..engine.engine import Engine
from ..errors import DockyardError, InvalidParameter
from ..images.reference import parse
from .http import AnyResponse, Request, StreamResponse, json_response
from .router import Handler, Route, get, post

Work = Callable[[Callable[[dict[str, Any]], None], threading.Event], None]
_DONE = object()


def _line(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg) + "\r\n").encode()


async def progress_stream(work: Work) -> AnyResponse:
    """Run ``work`` in a thread, relaying its progress as JSON lines.

    Like dockerd, an error raised before the first message becomes the HTTP
    status of the answer; later errors go into the stream as ``errorDetail``.
    A client that goes away cancels the work.
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
        raise first

    async def chunks() -> AsyncIterator[bytes]:
        item = first
        try:
            while item is not _DONE:
                if isinstance(item, BaseException):
                    message = str(item) if isinstance(item, DockyardError) else f"{type(item).__name__}: {item}"
                    yield _line({"errorDetail": {"message": message}, "error": message})
                    return
                yield _line(item)
                item = await queue.get()
        finally:
            cancel.set()

    return StreamResponse(chunks())


def _auth_of(request: Request) -> AuthConfig:
    return AuthConfig.from_header(request.headers.get("x-registry-auth"))


def pull_handler(engine: Engine) -> Handler:
    """``POST /images/create?fromImage=``; api/images.py owns the route and dispatches pulls here."""

    async def pull(request: Request) -> AnyResponse:
        image = request.q("fromImage") or ""
        if not image:
            raise InvalidParameter("fromImage or fromSrc is required")
        ref = from_image_and_tag(image, request.q("tag") or "")
        platform = request.q("platform") or None
        auth = _auth_of(request)
        return await progress_stream(lambda emit, cancel: engine.distribution.pull(ref, platform, auth, emit, cancel))

    return pull


def routes(engine: Engine) -> list[Route]:
    async def push(request: Request) -> AnyResponse:
        ref = parse(request.params["name"], default_tag=False)
        tag = request.q("tag") or ""
        if tag:
            ref = from_image_and_tag(ref.familiar_name, tag)
        auth = _auth_of(request)
        return await progress_stream(lambda emit, cancel: engine.distribution.push(ref, auth, emit, cancel))

    async def login(request: Request) -> AnyResponse:
        auth = AuthConfig.from_dict(await request.json(default={}))
        status, token = await asyncio.to_thread(engine.distribution.login, auth)
        return json_response({"Status": status, "IdentityToken": token})

    async def inspect(request: Request) -> AnyResponse:
        ref = parse(request.params["name"], default_tag=False)
        return json_response(await asyncio.to_thread(engine.distribution.inspect, ref, _auth_of(request)))

    return [
        post("/images/{name:.*}/push", push),
        post("/auth", login),
        get("/distribution/{name:.*}/json", inspect),
    ]
