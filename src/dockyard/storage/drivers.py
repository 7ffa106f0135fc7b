"""Choosing the snapshotter: overlay when the kernel and the data root allow it, vfs otherwise."""

from __future__ import annotations

import logging
import os

from .overlay import OverlaySnapshotter, overlay_supported
from .snapshotter import Snapshotter
from .vfs import VfsSnapshotter

log = logging.getLogger("dockyard.storage")


def open_snapshotter(data_root: str, driver: str = "") -> Snapshotter:
    """``driver`` is the configured storage-driver ("" = choose)."""
    if driver == "vfs":
        return VfsSnapshotter(os.path.join(data_root, "vfs"))
    overlay_root = os.path.join(data_root, "overlay2")
    if overlay_supported(overlay_root):
        return OverlaySnapshotter(overlay_root)
    if driver:
        log.warning("storage driver %s is not usable on %s; falling back to vfs", driver, data_root)
    else:
        log.info("overlay is not usable on %s; using vfs", data_root)
    return VfsSnapshotter(os.path.join(data_root, "vfs"))
