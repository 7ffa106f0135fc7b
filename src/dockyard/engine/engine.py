"""The backend façade the API routes call; it owns the engine's parts."""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any, Callable

from ..builder.service import BuildService
from ..config import DaemonConfig
from ..distribution.auth import AuthConfig
from ..containers import mounts
from ..containers.archive import ContainerFiles
from ..containers.commit import Committer
from ..containers.exec import ExecService
from ..containers.health import HealthMonitor
from ..containers.stats import StatsService
from ..containers.service import ContainerService
from ..containers.view import ContainerViews
from ..distribution.service import Distribution
from ..images.service import ImageService
from ..network.service import NetworkService
from ..storage.drivers import open_snapshotter
from ..util import host as hostinfo
from ..util.reference import parse as parse_reference
from .memory import bound_allocator_retention
from ..volumes.service import VolumeService
from .events import EventBus
from .surface import Surface
from ..util.atomic import write_atomic

log = logging.getLogger("dockyard.engine")


class Engine(Surface):
    """The engine's parts, wired; a front-end calls the ``Surface`` they implement."""

    def __init__(self, config: DaemonConfig) -> None:
        bound_allocator_retention()
        self.config = config
        self.started_at = time.time()
        os.makedirs(config.data_root, mode=0o711, exist_ok=True)
        os.makedirs(config.exec_root, mode=0o700, exist_ok=True)
        self.id = self._engine_id()
        self.events = EventBus()
        self.snapshotter = open_snapshotter(config.data_root, config.storage_driver)
        self.images = ImageService(config.data_root, self.snapshotter, self.events.publish)
        self.distribution = Distribution(config.data_root, config.registry(), self.images, self.events.publish)
        self.networks = NetworkService(config.network(), self.events.publish)
        self.volumes = VolumeService(config.data_root, self.events.publish)
        self.containers = ContainerService(config.containers(), self.images, self.snapshotter, self.events.publish,
                                           networks=self.networks, volumes=self.volumes)
        self.volumes.set_usage_check(lambda name: mounts.users(self.containers.all(), name))
        self.images.set_usage_check(self.containers.using_image, self.containers.is_running)
        # the per-container services register with containers.lifecycle before the restore reports to it
        self.execs = ExecService(self.containers, self.events.publish)
        self.health = HealthMonitor(self.containers, self.execs, self.events.publish)
        self.events.subscribe(self.health.on_event)
        self.stats = StatsService(self.containers)
        self.containers.restore()
        self.container_files = ContainerFiles(self.containers)
        self.committer = Committer(self.containers, self.images, self.snapshotter)
        self.builds = BuildService(config.data_root, self)
        self.container_views = ContainerViews(
            self.containers, self.snapshotter, self.networks, self.health, self.execs.of_container,
            lambda ref: self.images.resolve(ref).id,
            lambda image_id: [child.id for child in self.images.store.children(image_id)])

    def _engine_id(self) -> str:
        path = os.path.join(self.config.data_root, "engine-id")
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except FileNotFoundError:
            pass
        engine_id = secrets.token_hex(16)
        write_atomic(path, engine_id)
        return engine_id

    # -- system ------------------------------------------------------------------
    def runtime_versions(self) -> dict[str, tuple[str, str]]:
        names = {"runc", *self.config.runtimes}
        return {name: hostinfo.runtime_version(self.config.runtime_path(name)) for name in sorted(names)}

    def counts(self) -> dict[str, int]:
        """Containers by state and images, for `docker info`."""
        return {**self.containers.counts(), "images": self.images.count()}

    def held(self) -> dict[str, int]:
        """What the engine keeps in memory per container, by keeper (for tests and debugging: nothing
        of a removed container may stay)."""
        return {**self.containers.held(), "execs": self.execs.count(), "stats": self.stats.count(),
                "health": self.health.count()}

    def storage_driver_name(self) -> str:
        return self.snapshotter.name

    def storage_driver_status(self) -> list[list[str]]:
        return self.snapshotter.status()

    def disk_usage(self) -> dict[str, Any]:
        images, layers_size = self.images.disk_usage()
        return {"images": images, "volumes": self.volumes.disk_usage(),
                "build_cache": self.builds.disk_usage(),
                "layers_size": layers_size}

    # -- registries ----------------------------------------------------------------
    def pull_image(self, name: str, platform: str | None = None, auth: AuthConfig | None = None,
                   progress: Callable[[dict[str, Any]], None] = lambda msg: None) -> None:
        """Pull ``name`` (``:latest`` when untagged), e.g. for ``docker run``; blocking, run it in a thread."""
        self.distribution.pull(parse_reference(name), platform, auth or AuthConfig(), progress)

    def close(self) -> None:
        self.health.close()
        self.execs.close()
        self.containers.close()
        self.networks.close()
        self.distribution.close()
        log.info("engine stopped")
