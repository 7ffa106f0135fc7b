"""Registry routes: pull (``POST /images/create?fromImage=``), push, ``/auth``, distribution inspect."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..distribution.auth import AuthConfig
from ..distribution.names import from_image_and_tag
from ..engine.engine import Engine
from ..errors import InvalidParameter
from ..util.reference import parse
from .http import AnyResponse, Request, json_response
from .router import Handler, Route, get, post
from .workstream import error_message, progress_stream



def _line(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg) + "\r\n").encode()


def _error_line(e: BaseException) -> bytes:
    message = error_message(e)
    return _line({"errorDetail": {"message": message}, "error": message})


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
        return await progress_stream(lambda emit, cancel: engine.distribution.pull(ref, platform, auth, emit, cancel),
                                     _line, _error_line)

    return pull


def routes(engine: Engine) -> list[Route]:
    async def push(request: Request) -> AnyResponse:
        ref = parse(request.params["name"], default_tag=False)
        tag = request.q("tag") or ""
        if tag:
            ref = from_image_and_tag(ref.familiar_name, tag)
        auth = _auth_of(request)
        return await progress_stream(lambda emit, cancel: engine.distribution.push(ref, auth, emit, cancel),
                                     _line, _error_line)

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
