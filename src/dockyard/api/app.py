"""Joins every resource's route table into the application the server runs."""

from __future__ import annotations

from ..engine.engine import Engine
from . import images, system
from .router import App


def build_app(engine: Engine) -> App:
    routes = []
    routes += system.routes(engine)
    routes += images.routes(engine)
    return App(routes)
