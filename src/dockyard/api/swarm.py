"""Swarm routes on a node that is not in a swarm, as dockerd answers them.

dockyard does not implement swarm mode. Clients still call these endpoints: docker-py's
``leave_swarm(force=True)`` tidies up with one and takes dockerd's 503 "not part of a swarm"
as done, ``docker info`` and ``docker node ls`` show the "not a swarm manager" answer. So every
swarm resource answers what dockerd 20.10 answers on a node outside a swarm, and the two calls
that would make one (init, join) are refused with a message saying why.
"""

from __future__ import annotations

from .. import errors
from ..httpd.server import Request, Response
from .router import Route, delete, get, post

NOT_IN_SWARM = "This node is not part of a swarm"
NOT_A_MANAGER = ("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" "
                 "to connect this node to swarm and try again.")
NOT_IMPLEMENTED = "swarm mode is not implemented by dockyard: this node cannot {} a swarm"

# (method, path) of every swarm endpoint that answers "not a swarm manager" off a swarm
_MANAGER_ONLY = [
    ("GET", "/swarm"), ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"),
    ("POST", "/services/{id}/update"), ("DELETE", "/services/{id}"), ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("POST", "/nodes/{id}/update"), ("DELETE", "/nodes/{id}"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{id}"), ("POST", "/secrets/{id}/update"),
    ("DELETE", "/secrets/{id}"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"), ("POST", "/configs/{id}/update"),
    ("DELETE", "/configs/{id}"),
]


def routes(_engine: object) -> list[Route]:
    async def not_a_manager(request: Request) -> Response:
        await request.drain()
        raise errors.Unavailable(NOT_A_MANAGER)

    async def leave(request: Request) -> Response:
        await request.drain()
        raise errors.Unavailable(NOT_IN_SWARM)

    def refuse(verb: str):
        async def handler(request: Request) -> Response:
            await request.json(default={})  # a malformed body is told as such first, as dockerd does
            raise errors.InvalidParameter(NOT_IMPLEMENTED.format(verb))
        return handler

    verbs = {"GET": get, "POST": post, "DELETE": delete}
    return [
        post("/swarm/init", refuse("init")),
        post("/swarm/join", refuse("join")),
        post("/swarm/leave", leave),
        *(verbs[method](path, not_a_manager) for method, path in _MANAGER_ONLY),
    ]
