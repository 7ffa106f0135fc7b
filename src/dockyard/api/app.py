"""Joins every resource's route table into the application the server runs."""

from __future__ import annotations

from ..engine.engine import Engine
from . import system
from .router import App


def build_app(engine: Engine) -> App:
    routes = []
    routes += system.routes(engine)
    return App(routes)
