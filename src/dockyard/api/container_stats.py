"""Routes that watch or retune a running container: stats and update."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from .. import errors
from ..containers import update as updatemod
from ..engine.engine import Engine
from .http import Request, Response, StreamResponse, json_response
from .router import Route, get, post

INTERVAL = 1.0  # dockerd's collector interval


def routes(engine: Engine) -> list[Route]:
    svc = engine.stats

    async def stats(request: Request) -> Response | StreamResponse:
        c = engine.containers.get(request.params["name"])
        if not request.qbool("stream", True):
            return json_response(await asyncio.to_thread(svc.stats, c.id, request.qbool("one-shot")))

        async def body() -> AsyncIterator[bytes]:
            previous: dict[str, Any] | None = None
            while True:
                sample = await asyncio.to_thread(svc.next, c.id, previous)
                previous = sample
                yield (json.dumps(sample) + "\n").encode()
                await asyncio.sleep(INTERVAL)

        return StreamResponse(body())

    async def update(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        warnings = await asyncio.to_thread(updatemod.update, engine.containers, engine.events.publish,
                                           request.params["name"], body)
        return json_response({"Warnings": warnings})

    return [
        get("/containers/{name:.*}/stats", stats),
        post("/containers/{name:.*}/update", update),
    ]
