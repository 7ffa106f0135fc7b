"""The backend façade the API routes call; it owns the engine's parts."""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any

from ..daemon.config import DaemonConfig
from ..images.service import ImageService
from ..storage.drivers import open_snapshotter
from . import hostinfo
from .events import EventBus

log = logging.getLogger("dockyard.engine")


class Engine:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.started_at = time.time()
        os.makedirs(config.data_root, mode=0o711, exist_ok=True)
        os.makedirs(config.exec_root, mode=0o700, exist_ok=True)
        self.id = self._engine_id()
        self.events = EventBus()
        self.snapshotter = open_snapshotter(config.data_root, config.storage_driver)
        self.images = ImageService(config.data_root, self.snapshotter, self.events.publish)

    def _engine_id(self) -> str:
        path = os.path.join(self.config.data_root, "engine-id")
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except FileNotFoundError:
            pass
        engine_id = secrets.token_hex(16)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(engine_id)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return engine_id

    # -- system ------------------------------------------------------------------
    def runtime_versions(self) -> dict[str, tuple[str, str]]:
        names = {"runc", *self.config.runtimes}
        return {name: hostinfo.runtime_version(self.config.runtime_path(name)) for name in sorted(names)}

    def counts(self) -> dict[str, int]:
        """Containers by state and images, for `docker info`."""
        return {"containers": 0, "running": 0, "paused": 0, "stopped": 0,
                "images": self.images.count()}

    def storage_driver_name(self) -> str:
        return self.snapshotter.name

    def storage_driver_status(self) -> list[list[str]]:
        return self.snapshotter.status()

    def disk_usage(self) -> dict[str, Any]:
        images, layers_size = self.images.disk_usage()
        return {"images": images, "containers": [], "volumes": [], "build_cache": [], "layers_size": layers_size}

    def close(self) -> None:
        log.info("engine stopped")
