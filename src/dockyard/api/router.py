"""Route tables, API versioning and error translation.

Each resource module exposes ``routes(backend) -> list[Route]`` that reads like
the API reference (moby's router layout); the App joins them, strips the
``/vX.Y`` prefix, enforces the version window and turns engine errors into
dockerd's JSON errors.
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass
from typing import Awaitable, Callable

from .. import errors
from ..apischema import validator
from ..httpd.server import AnyResponse, Request, Response, StreamResponse, empty_response, json_response
from . import validation

log = logging.getLogger("dockyard.api")

MIN_API_VERSION = "1.24"
API_VERSION = "1.50"

Handler = Callable[[Request], Awaitable[AnyResponse]]

_VERSIONED = re.compile(r"/v([0-9]+\.[0-9]+)(/.*)", re.DOTALL)
_PARAM = re.compile(r"\{(\w+)(?::([^}]+))?\}")
# dockerd's CORS answer headers (api/server/middleware/cors.go)
CORS_HEADERS = [("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth"),
                ("Access-Control-Allow-Methods", "HEAD, GET, POST, DELETE, PUT, OPTIONS")]

STATUS_BY_KIND: list[tuple[type[errors.DockyardError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidParameter, 400),
    (errors.NotModified, 304),
    (errors.Forbidden, 403),
    (errors.Unauthorized, 401),
    (errors.Unavailable, 503),
    (errors.NotImplementedYet, 501),
]


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def version_at_least(request: Request, version: str) -> bool:
    return version_tuple(request.api_version) >= version_tuple(version)


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    min_version: str | None = None

    def __post_init__(self) -> None:
        def repl(m: re.Match[str]) -> str:
            name, pattern = m.group(1), m.group(2)
            return f"(?P<{name}>{'.+' if pattern == '.*' else pattern or '[^/]+'})"

        # DOTALL: an object whose name holds a newline (refused now, possibly stored by an older
        # version) can still be inspected and removed
        self.regex = re.compile(_PARAM.sub(repl, self.template), re.DOTALL)
        # the spec's name for this operation, "POST /containers/{}/update": its body schema's key
        self.operation = f"{self.method} {_PARAM.sub('{}', self.template)}"
        self.json_body = validator.has_body(self.operation)


def get(template: str, handler: Handler, min_version: str | None = None) -> Route:
    return Route("GET", template, handler, min_version)


def post(template: str, handler: Handler, min_version: str | None = None) -> Route:
    return Route("POST", template, handler, min_version)


def put(template: str, handler: Handler, min_version: str | None = None) -> Route:
    return Route("PUT", template, handler, min_version)


def delete(template: str, handler: Handler, min_version: str | None = None) -> Route:
    return Route("DELETE", template, handler, min_version)


def head(template: str, handler: Handler, min_version: str | None = None) -> Route:
    return Route("HEAD", template, handler, min_version)


def error_status(exc: BaseException) -> int:
    for kind, status in STATUS_BY_KIND:
        if isinstance(exc, kind):
            return status
    return 500


def error_message(exc: errors.DockyardError, request: Request) -> str:
    """The error as told to this client: in dockerd 20.10's words for API versions before 1.44."""
    if exc.before_1_44 is not None and request.api_version and version_tuple(request.api_version) < (1, 44):
        return exc.before_1_44
    return str(exc)


class App:
    """``cors_origin`` is the daemon's api-cors-header: the one browser origin ("*": any)
    allowed to call the API. Without it a request that carries an ``Origin`` header (which
    browsers send on every cross-site request, and Docker's clients never send) is refused."""

    def __init__(self, routes: list[Route], cors_origin: str = "") -> None:
        self.routes = routes
        self.cors_origin = cors_origin
        validator.warm([r.operation for r in routes if r.json_body])

    async def __call__(self, request: Request) -> AnyResponse:
        origin = request.headers.get("origin")
        if origin is not None:
            if not self.cors_origin or self.cors_origin not in ("*", origin):
                return json_response({"message": f"Origin {origin!r} is not allowed: browser requests need "
                                                  "the daemon's api-cors-header to name their origin"}, 403)
            if request.method == "OPTIONS":  # a browser's preflight
                response: AnyResponse = empty_response(200)
            else:
                response = await self._answer(request)
            if isinstance(response, (Response, StreamResponse)):
                response.headers = [*response.headers, ("Access-Control-Allow-Origin", self.cors_origin),
                                    *CORS_HEADERS]
            return response
        return await self._answer(request)

    async def _answer(self, request: Request) -> AnyResponse:
        try:
            return await self._dispatch(request)
        except errors.DockyardError as e:
            status = error_status(e)
            if status >= 500:
                log.error("%s %s: %s", request.method, request.raw_path, e)
            return json_response({"message": error_message(e, request)}, status)
        except Exception as e:  # the daemon must answer, never die, on a handler bug
            log.error("%s %s failed:\n%s", request.method, request.raw_path, traceback.format_exc())
            return json_response({"message": f"{type(e).__name__}: {e}"}, 500)

    async def _dispatch(self, request: Request) -> AnyResponse:
        path = request.path
        m = _VERSIONED.fullmatch(path)
        if m:
            version, path = m.group(1), m.group(2)
            if version_tuple(version) > version_tuple(API_VERSION):
                raise errors.InvalidParameter(
                    f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
            if version_tuple(version) < version_tuple(MIN_API_VERSION):
                raise errors.InvalidParameter(
                    f"client version {version} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version")
            request.api_version = version
        else:
            request.api_version = API_VERSION
        for route in self.routes:
            match = route.regex.fullmatch(path)
            if not match:
                continue
            if route.method != request.method and not (route.method == "GET" and request.method == "HEAD"):
                continue
            if route.min_version and version_tuple(request.api_version) < version_tuple(route.min_version):
                continue
            request.params = match.groupdict()
            if route.json_body:
                request.validated_json = await validation.read_body(request, route.operation)
            return await route.handler(request)
        # a known path with another method too: dockerd's mux answers 404 alike, never 405
        return json_response({"message": "page not found"}, 404)
