"""The volume service (``engine.volumes``): named and anonymous volumes, who uses them, who has them mounted.

"In use" means referenced by any container record (running or not), as in dockerd; "mounted"
means a running container holds it, which is what the driver's mount/unmount follows.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any, Callable

from .. import errors
from ..util.du import tree_size
from . import subpath as subpathmod
from .local import ANONYMOUS_LABEL, LocalDriver, Volume, validate_name, validate_options

Publish = Callable[[str, str, str, dict[str, str]], Any]
UsageCheck = Callable[[str], list[str]]


class VolumeService:
    def __init__(self, data_root: str, publish: Publish) -> None:
        self.local = LocalDriver(os.path.join(data_root, "volumes"))
        # staging mounts of pinned subpaths: root-only, outside every container
        self._pins = os.path.join(data_root, "volume-subpaths")
        os.makedirs(self._pins, mode=0o700, exist_ok=True)
        self._publish = publish
        self._lock = threading.RLock()
        self._volumes: dict[str, Volume] = {v.name: v for v in self.local.load_all()}
        self._mounted: dict[str, set[str]] = {}  # volume name -> container IDs holding it mounted
        self._users: UsageCheck = lambda name: []

    def set_usage_check(self, users: UsageCheck) -> None:
        """``users(name)`` lists the IDs of the containers whose mounts name the volume."""
        self._users = users

    # -- lookup ----------------------------------------------------------------
    def get(self, name: str) -> Volume:
        with self._lock:
            vol = self._volumes.get(name)
        if vol is None:
            raise errors.NotFound(f"get {name}: no such volume")
        return vol

    def all(self) -> list[Volume]:
        with self._lock:
            return list(self._volumes.values())

    def count(self) -> int:
        with self._lock:
            return len(self._volumes)

    def mountpoint(self, name: str) -> str:
        return self.local.mountpoint(name)

    def users(self, name: str) -> list[str]:
        return self._users(name)

    # -- create, remove ----------------------------------------------------------
    def create(self, name: str | None = None, driver: str | None = None, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None) -> Volume:
        """Create ``name`` (a new anonymous volume when empty); an existing name is returned as it is."""
        driver = driver or "local"
        labels = dict(labels or {})
        if not name:
            name = secrets.token_hex(32)
            labels.setdefault(ANONYMOUS_LABEL, "")
        if driver != "local":
            raise errors.NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        with self._lock:
            existing = self._volumes.get(name)
            if existing is not None:
                return existing
            vol = self.local.create(name, labels, dict(options or {}))
            self._volumes[name] = vol
        self._publish("volume", "create", name, {"driver": vol.driver})
        return vol

    def validate_create(self, name: str, driver: str | None, options: dict[str, str] | None) -> None:
        """What ``create`` would refuse, checked without creating anything (for container create)."""
        if driver and driver != "local":
            raise errors.NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        with self._lock:
            if name in self._volumes:
                return
        validate_name(name)
        validate_options(name, options or {})

    def remove(self, name: str, force: bool = False) -> None:
        with self._lock:
            vol = self._volumes.get(name)
            if vol is None:
                if force:
                    return
                raise errors.NotFound(f"get {name}: no such volume")
            users = self._users(name)
            if users:
                raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self.local.remove(vol)
            del self._volumes[name]
            self._mounted.pop(name, None)
        self._publish("volume", "destroy", name, {"driver": vol.driver})

    def prune(self, keep: Callable[[Volume], bool]) -> tuple[list[str], int]:
        deleted, reclaimed = [], 0
        for vol in self.all():
            if keep(vol) or self._users(vol.name):
                continue
            size = self.size(vol.name)
            try:
                self.remove(vol.name)
            except errors.DockyardError:
                continue
            deleted.append(vol.name)
            reclaimed += size
        return deleted, reclaimed

    # -- mount, unmount -----------------------------------------------------------
    def mount(self, name: str, container_id: str, attributes: dict[str, str]) -> str:
        """Hold the volume for a starting container; the host path to bind into it."""
        vol = self.get(name)
        with self._lock:
            holders = self._mounted.setdefault(name, set())
            if not holders:
                self.local.mount(vol)
            holders.add(container_id)
        self._publish("volume", "mount", name, {"driver": vol.driver, "container": container_id, **attributes})
        return self.local.mountpoint(name)

    def pin_subpath(self, name: str, container_id: str, subpath: str) -> str:
        """A path runc can mount that stays ``subpath`` of the mounted volume whatever is swapped in it."""
        directory = os.path.join(self._pins, container_id, name)
        index = 0
        while os.path.lexists(os.path.join(directory, str(index))):  # one left busy by a past release
            index += 1
        return subpathmod.pin(self.local.mountpoint(name), subpath, os.path.join(directory, str(index)))

    def unmount(self, name: str, container_id: str) -> None:
        subpathmod.release(os.path.join(self._pins, container_id, name))
        try:
            os.rmdir(os.path.join(self._pins, container_id))
        except OSError:
            pass  # absent, or pins of another volume remain
        with self._lock:
            vol = self._volumes.get(name)
            holders = self._mounted.get(name)
            if vol is None or not holders or container_id not in holders:
                return
            holders.discard(container_id)
            if not holders:
                self.local.unmount(vol)
        self._publish("volume", "unmount", name, {"driver": vol.driver, "container": container_id})

    def adopt(self, name: str, container_id: str) -> None:
        """A container that kept running while the daemon was down still holds the volume (live restore)."""
        with self._lock:
            if name in self._volumes:
                self._mounted.setdefault(name, set()).add(container_id)

    # -- usage ----------------------------------------------------------------------
    def size(self, name: str) -> int:
        return tree_size(self.local.mountpoint(name))

    def disk_usage(self) -> list[dict[str, Any]]:
        return [{**describe(vol, self.local.mountpoint(vol.name)),
                 "UsageData": {"Size": self.size(vol.name), "RefCount": len(self._users(vol.name))}}
                for vol in self.all()]


def describe(vol: Volume, mountpoint: str) -> dict[str, Any]:
    """The Engine API's Volume object."""
    return {"CreatedAt": vol.created_at, "Driver": vol.driver, "Labels": vol.labels or None,
            "Mountpoint": mountpoint, "Name": vol.name, "Options": vol.options or None, "Scope": "local"}
