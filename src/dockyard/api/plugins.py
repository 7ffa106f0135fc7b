"""Plugin routes: dockyard runs no managed plugins, so it answers as a dockerd that has none.

The list is empty and every verb on a named plugin is dockerd's 404 'plugin "NAME" not found'.
Installing one (pull, create, upgrade of a found one) cannot happen: those are refused with a
message that says so, where dockerd would fetch from a registry.
"""

from __future__ import annotations

from .. import errors
from ..httpd.server import Request, Response, json_response
from ..util import filters, reference
from .router import Route, delete, get, post

NOT_SUPPORTED = "managed plugins are not supported by dockyard: {} cannot be installed"


def _parse_remote(remote: str) -> str:
    """The reference as dockerd names it (``foo`` → ``docker.io/library/foo:latest``'s short form)."""
    if not remote:
        raise errors.InvalidParameter("invalid reference format")
    try:
        ref = reference.parse(remote)
    except errors.InvalidParameter:
        raise errors.InvalidParameter("invalid reference format") from None
    return str(ref)


def _not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f'plugin "{name}" not found')


def routes(_engine: object) -> list[Route]:
    async def list_(request: Request) -> Response:
        filters.parse(request.q("filters"), {"capability", "enabled"})
        return json_response([])

    async def privileges(request: Request) -> Response:
        # dockerd lists what the plugin's config asks for; it found none to fetch here either
        _parse_remote(request.q("remote", "") or "")
        return json_response([])

    async def pull(request: Request) -> Response:
        await request.drain()
        remote = _parse_remote(request.q("remote", "") or "")
        raise errors.NotImplementedYet(NOT_SUPPORTED.format(f'plugin "{remote}"'))

    async def create(request: Request) -> Response:
        await request.drain()
        name = request.q("name", "") or ""
        if not name:
            raise errors.InvalidParameter("failed to parse reference : invalid reference format")
        _parse_remote(name)
        raise errors.InvalidParameter(NOT_SUPPORTED.format(f'plugin "{name}"'))

    async def one(request: Request) -> Response:
        await request.drain()
        raise _not_found(request.params["name"])

    async def enable(request: Request) -> Response:
        await request.drain()
        timeout = request.q("timeout", "") or ""
        if not timeout.lstrip("+-").isdigit():
            # dockerd parses it with strconv.Atoi before looking the plugin up
            raise errors.InvalidParameter(f'strconv.Atoi: parsing "{timeout}": invalid syntax')
        raise _not_found(request.params["name"])

    async def upgrade(request: Request) -> Response:
        await request.drain()
        _parse_remote(request.q("remote", "") or "")
        name = request.params["name"]
        raise _not_found(name if ":" in name.rsplit("/", 1)[-1] else name + ":latest")

    return [
        get("/plugins", list_),
        get("/plugins/privileges", privileges),
        post("/plugins/pull", pull),
        post("/plugins/create", create),
        get("/plugins/{name:.*}/json", one),
        post("/plugins/{name:.*}/set", one),
        post("/plugins/{name:.*}/enable", enable),
        post("/plugins/{name:.*}/disable", one),
        post("/plugins/{name:.*}/push", one),
        post("/plugins/{name:.*}/upgrade", upgrade),
        delete("/plugins/{name:.*}", one),
    ]
