"""Joins every resource's route table into the application the server runs."""

from __future__ import annotations

from ..engine.engine import Engine
from . import (build, container_fs, container_stats, containers, distribution, exec, images, networks, plugins, session,
               swarm, system, volumes, websocket)
from .router import App


def build_app(engine: Engine) -> App:
    routes = []
    routes += system.routes(engine)
    # POST /images/create is both import (fromSrc, images) and pull (fromImage, distribution)
    routes += images.routes(engine, distribution.pull_handler(engine))
    routes += distribution.routes(engine)
    routes += containers.routes(engine)
    routes += exec.routes(engine)
    routes += websocket.routes(engine)
    routes += container_fs.routes(engine)
    routes += container_stats.routes(engine)
    routes += networks.routes(engine)
    routes += volumes.routes(engine)
    routes += build.routes(engine)
    routes += swarm.routes(engine)
    routes += plugins.routes(engine)
    routes += session.routes(engine)
    return App(routes, engine.config.api_cors_header)
