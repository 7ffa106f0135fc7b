"""The docker CLI's configuration file, for the settings dockyard honours.

``config.json`` in ``--config`` / ``$DOCKER_CONFIG`` / ``~/.docker``: the
default ``--format`` of listing commands (``imagesFormat``, later
``psFormat`` and friends), read as the docker CLI reads it.
"""

from __future__ import annotations

import json
import os
from typing import Any


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def load() -> dict[str, Any]:
    """The parsed file, or an empty dict when there is none or it is unreadable."""
    try:
        with open(os.path.join(config_dir(), "config.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def default_format(key: str) -> str:
    """A listing's configured format (``imagesFormat``), or "" for the command's own table."""
    value = load().get(key)
    return value if isinstance(value, str) else ""
