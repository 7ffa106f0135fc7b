"""Build routes: ``POST /build`` (the classic builder), ``POST /build/prune``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..builder import cachemounts
from ..builder.options import Options, StepError
from ..errors import InvalidParameter
from ..httpd.server import AnyResponse, Request, json_response
from ..util import filters as flt
from .backend import BuildBackend
from .images import BodyReader
from .router import Route, post
from .workstream import error_message, progress_stream

def _line(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


def _error_line(e: BaseException) -> bytes:
    message = error_message(e)
    detail: dict[str, Any] = {"message": message}
    if isinstance(e, StepError) and e.code is not None:
        detail = {"code": e.code, "message": message}
    return _line({"errorDetail": detail, "error": message})


def _options(request: Request) -> Options:
    def json_map(name: str) -> dict[str, Any]:
        value = request.qjson(name, {}) or {}
        if not isinstance(value, dict):
            raise InvalidParameter(f"invalid {name} parameter")
        return value

    cache_from = request.qjson("cachefrom", []) or []
    if not isinstance(cache_from, list):
        raise InvalidParameter("invalid cachefrom parameter")
    if request.q("remote"):
        raise InvalidParameter("remote build contexts (git, URL) are not supported")
    return Options(
        # Go's FormValue: the first value (docker-py sends the Dockerfile's text as a second one)
        dockerfile=(request.qlist("dockerfile") or [""])[0] or "Dockerfile",
        tags=[t for t in request.qlist("t") if t],
        build_args={k: (None if v is None else str(v)) for k, v in json_map("buildargs").items()},
        target=request.q("target") or "",
        labels={k: str(v) for k, v in json_map("labels").items()},
        no_cache=request.qbool("nocache"),
        pull=request.qbool("pull"),
        remove=request.qbool("rm", True),
        force_remove=request.qbool("forcerm"),
        quiet=request.qbool("q"),
        network=request.q("networkmode") or "",
        platform=request.q("platform") or "",
        cache_from=[str(c) for c in cache_from],
        extra_hosts=_extra_hosts(request),
    )


def _extra_hosts(request: Request) -> list[tuple[str, str]]:
    """``extrahosts``: repeated (docker-py) or comma-joined (the docker CLI), each ``host:ip`` or ``host=ip``.
    The address is checked where dockerd checks it, by the first RUN step (an error on the stream)."""
    out = []
    for value in request.qlist("extrahosts"):
        for entry in filter(None, value.split(",")):
            seps = [i for i in (entry.find(":"), entry.find("=")) if i > 0]
            if not seps:
                raise InvalidParameter(f"bad format for add-host: {entry!r}")
            out.append((entry[:min(seps)], entry[min(seps) + 1:]))
    return out


def routes(backend: BuildBackend) -> list[Route]:
    async def build(request: Request) -> AnyResponse:
        opts = _options(request)
        if (request.q("version") or "1") != "1":
            raise InvalidParameter("BuildKit is not supported by this daemon: use the classic builder (version=1)")
        reader = BodyReader(request, asyncio.get_running_loop())
        return await progress_stream(lambda emit, cancel: backend.build_image(reader, opts, emit, cancel),
                                     _line, _error_line, close=reader.aclose)

    async def prune(request: Request) -> AnyResponse:
        f = flt.parse(request.q("filters"), {"until", "id", "parent", "type", "description", "inuse", "shared",
                                             "private"})
        until = f.get("until")
        until_ns = None
        if until:
            until_ns = cachemounts.until_ns(until[-1])
            if until_ns is None:
                until_ns = flt.parse_timestamp(until[-1], "until")
        keep = request.q("keep-storage") or request.q("reserved-space") or "0"  # reserved-space: API 1.48
        if not keep.isdigit():
            raise InvalidParameter(f"invalid keep-storage value {keep!r}")
        deleted, reclaimed = await asyncio.to_thread(backend.prune_build_cache, f, until_ns, int(keep))
        return json_response({"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    return [
        post("/build", build),
        post("/build/prune", prune),
    ]
