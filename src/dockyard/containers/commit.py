"""docker diff and docker commit: what a container changed, and an image made of it.

Both read the container's writable layer through ``snapshotter.diff`` (a
layer tar with whiteouts), so they work the same on every storage driver.
The files runc creates as mount points (dockerd keeps them in its ``-init``
layer) are left out of both.
"""

from __future__ import annotations

import os
import tarfile
from typing import Any

from ..images.changes import apply_changes
from ..storage import rootfd
from ..util.archive import WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from ..util.iterio import IterReader
from .archive import TarFilter
from .state import PAUSED, RUNNING

MODIFIED, ADDED, DELETED = 0, 1, 2
# mount points and files dockerd's init layer holds
INIT_FILES = {"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv", "etc/mtab", "dev/console"}
INIT_DIRS = {"proc", "sys", "dev"}
IMAGE_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "StopSignal",
              "Healthcheck", "OnBuild", "Shell")


def _is_init(name: str) -> bool:
    rel = name.lstrip("./") if name.startswith("./") else name.lstrip("/")
    return rel in INIT_FILES or rel in INIT_DIRS or rel.split("/", 1)[0] in INIT_DIRS


def _without_init(m: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if _is_init(m.name) else m


class Committer:
    def __init__(self, containers: Any, images: Any, snapshotter: Any) -> None:
        self.containers = containers
        self.images = images
        self.snapshotter = snapshotter

    def changes(self, ref: str) -> list[dict[str, Any]]:
        c = self.containers.get(ref)
        image = self.images.store.get(c.image_id)
        lowers = self.snapshotter.lower_chain(image.top_layer) if image.top_layer else []
        # looked up in each layer as a root (an image's symlinks never lead to the host's files)
        lower_fds = [rootfd.open_root(low) for low in lowers]
        try:
            found = self._found(c.id, lower_fds)
        finally:
            for fd in lower_fds:
                os.close(fd)
        # directories copied up only because runc made a mount point in them
        for path in [p for p, k in found.items() if k == MODIFIED and p.strip("/") in ("etc", "dev")]:
            if not any(other.startswith(path + "/") for other in found):
                del found[path]
        return [{"Path": p, "Kind": k} for p, k in sorted(found.items())]

    def _found(self, cid: str, lower_fds: list[int]) -> dict[str, int]:
        found: dict[str, int] = {}
        with tarfile.open(fileobj=IterReader(iter(self.snapshotter.diff(cid))), mode="r|") as tar:
            for m in tar:
                name = "/" + m.name.strip("/").removeprefix("./")
                if _is_init(name):
                    continue
                parent, base = os.path.split(name)
                if base == WHITEOUT_OPAQUE:
                    found.setdefault(parent, MODIFIED)
                elif base.startswith(WHITEOUT_PREFIX):
                    found[os.path.join(parent, base[len(WHITEOUT_PREFIX):])] = DELETED
                else:
                    rel = name.lstrip("/")
                    in_lower = any(rootfd.lexists(low, rel) for low in lower_fds)
                    found[name] = MODIFIED if in_lower else ADDED
        return found

    def commit(self, ref: str, repo: str, tag: str, comment: str, author: str, pause: bool,
               changes: list[str], config: dict[str, Any] | None) -> str:
        c = self.containers.get(ref)
        paused_here = False
        if pause and c.state.status == RUNNING:
            self.containers.pause(c.id)
            paused_here = True
        try:
            layer = TarFilter(IterReader(iter(self.snapshotter.diff(c.id))), _without_init)
            # as dockerd: the container's config, then the request's, then the Dockerfile-style changes
            merged = {k: v for k, v in c.config.items() if k in IMAGE_KEYS}
            merged.update({k: v for k, v in (config or {}).items() if v not in (None, "", [], {})})
            merged = apply_changes(merged, changes)
            # empty maps and lists are left out of an image config, as dockerd's omitempty does
            merged = {k: v for k, v in merged.items() if v not in ({}, [])}
            image = self.images.create_image_from_layer(
                c.image_id, layer, [], comment=comment, author=author, config_overrides=merged)
        finally:
            if paused_here and c.state.status == PAUSED:
                self.containers.unpause(c.id)
        if repo:
            self.images.tag(image.id, repo, tag or "latest")
        return image.id
