"""``POST /session``: the BuildKit session endpoint, answered as by a daemon that has no BuildKit.

dockerd 20.10 serves it at every API version, with or without the experimental flag,
and refuses a request that does not upgrade to h2c before anything else; dockyard checks
the same, then says that it has no session manager to hand the upgraded connection to
(its classic builder never asks the client for files or secrets over a session).
"""

from __future__ import annotations

from .. import errors
from ..httpd.server import Request, Response
from .router import Route, post


def routes(_engine: object) -> list[Route]:
    async def session(request: Request) -> Response:
        await request.drain()
        proto = request.headers.get("upgrade", "")
        if not proto:
            raise errors.InvalidParameter("no upgrade proto in request")
        if proto != "h2c":
            raise errors.InvalidParameter(f"protocol {proto} not supported")
        raise errors.NotImplementedYet("BuildKit sessions are not supported by dockyard: "
                                       "its classic builder needs none")

    return [post("/session", session)]
