"""Routes that watch or retune a running container: stats and update."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from .. import errors
from ..httpd.server import Request, Response, StreamResponse, json_response
from .backend import ContainerStatsBackend
from .router import Route, get, post

INTERVAL = 1.0  # dockerd's collector interval


def routes(backend: ContainerStatsBackend) -> list[Route]:
    async def stats(request: Request) -> Response | StreamResponse:
        name = request.params["name"]
        if not request.qbool("stream", True):
            return json_response(await asyncio.to_thread(backend.container_stats, name, request.qbool("one-shot")))
        container_id = await asyncio.to_thread(backend.find_container, name)  # a 404 before the stream starts

        async def body() -> AsyncIterator[bytes]:
            previous: dict[str, Any] | None = None
            while True:
                sample = await asyncio.to_thread(backend.next_container_stats, container_id, previous)
                previous = sample
                yield (json.dumps(sample) + "\n").encode()
                await asyncio.sleep(INTERVAL)

        return StreamResponse(body())

    async def update(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        warnings = await asyncio.to_thread(backend.update_container, request.params["name"], body)
        return json_response({"Warnings": warnings})

    return [
        get("/containers/{name:.*}/stats", stats),
        post("/containers/{name:.*}/update", update),
    ]
