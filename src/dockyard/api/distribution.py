"""Registry routes: pull (``POST /images/create?fromImage=``), push, ``/auth``, distribution inspect."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..distribution.auth import AuthConfig
from ..errors import InvalidParameter
from ..httpd.server import AnyResponse, Request, json_response
from .backend import DistributionBackend
from .router import Handler, Route, get, post
from .workstream import error_message, progress_stream



def _line(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg) + "\r\n").encode()


def _error_line(e: BaseException) -> bytes:
    message = error_message(e)
    return _line({"errorDetail": {"message": message}, "error": message})


def _auth_of(request: Request) -> AuthConfig:
    return AuthConfig.from_header(request.headers.get("x-registry-auth"))


def pull_handler(backend: DistributionBackend) -> Handler:
    """``POST /images/create?fromImage=``; api/images.py owns the route and dispatches pulls here."""

    async def pull(request: Request) -> AnyResponse:
        image = request.q("fromImage") or ""
        if not image:
            raise InvalidParameter("fromImage or fromSrc is required")
        ref = backend.pull_reference(image, request.q("tag") or "")
        platform = request.q("platform") or None
        auth = _auth_of(request)
        return await progress_stream(lambda emit, cancel: backend.pull(ref, platform, auth, emit, cancel),
                                     _line, _error_line)

    return pull


def routes(backend: DistributionBackend) -> list[Route]:
    async def push(request: Request) -> AnyResponse:
        ref = backend.push_reference(request.params["name"], request.q("tag") or "")
        auth = _auth_of(request)
        return await progress_stream(lambda emit, cancel: backend.push(ref, auth, emit, cancel),
                                     _line, _error_line)

    async def login(request: Request) -> AnyResponse:
        auth = AuthConfig.from_dict(await request.json(default={}))
        status, token = await asyncio.to_thread(backend.login, auth)
        return json_response({"Status": status, "IdentityToken": token})

    async def inspect(request: Request) -> AnyResponse:
        return json_response(await asyncio.to_thread(backend.distribution_inspect, request.params["name"],
                                                     _auth_of(request)))

    return [
        post("/images/{name:.*}/push", push),
        post("/auth", login),
        get("/distribution/{name:.*}/json", inspect),
    ]
