"""The build service (``engine.builds``): runs builds, keeps their cache, prunes and accounts for it.

Contexts are unpacked under ``<data-root>/build/tmp/`` (emptied at start) and
removed when their build ends; the cache index lives in ``<data-root>/build/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from typing import IO, Any, Callable

from .. import errors
from ..util import timefmt
from .builder import Builder
from .cache import BuildCache
from .cachemounts import TYPE as CACHE_MOUNT, CacheMounts
from .context import receive
from .options import VIEW_PREFIX, Emit, Options
from .runstep import reap


def _iso(ts: float) -> str:
    return timefmt.rfc3339_nano(int(ts * 1_000_000_000))


def _mounts_below(path: str) -> list[str]:
    """Mount points under ``path``, deepest first."""
    below = os.path.realpath(path) + os.sep
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return []
    return sorted((p for p in points if p.startswith(below)), reverse=True)


class BuildService:
    def __init__(self, data_root: str, engine: Any) -> None:
        self.engine = engine
        self.root = os.path.join(data_root, "build")
        self.tmp = os.path.join(self.root, "tmp")
        reap(engine)
        for point in _mounts_below(self.tmp):  # a step reap could not end: never delete through its rootfs
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        for snap in engine.snapshotter.snapshots():
            if snap.key.startswith(VIEW_PREFIX):
                engine.snapshotter.remove(snap.key)
        os.makedirs(self.tmp, mode=0o700, exist_ok=True)
        self.cache = BuildCache(self.root, self._image_exists)
        self.cache_mounts = CacheMounts(self.root)
        self._prune_lock = threading.Lock()

    def _image_exists(self, image_id: str) -> bool:
        return image_id in self.engine.images.store.images

    def build(self, body: IO[bytes], opts: Options, emit: Emit, cancel: threading.Event,
              on_context: Callable[[], None] = lambda: None) -> str:
        """Receive the context from ``body`` and build; returns the image ID.

        Errors raised before the first ``emit`` are the request's own (bad
        context, Dockerfile syntax, unknown target); later ones end the stream.
        """
        ctx = receive(body, self.tmp, opts.dockerfile)
        on_context()
        try:
            builder = Builder(self.engine, self.cache, self.tmp, ctx, opts, emit, cancel)
            try:
                plan, needed = builder.prepare()
                return builder.run(plan, needed)
            finally:
                builder.close()
        finally:
            ctx.close()

    # -- cache accounting ----------------------------------------------------------------------
    def _own_size(self, image_id: str) -> int:
        images = self.engine.images
        image = images.store.get(image_id)
        parent_layers = len(images.store.get(image.parent).chain_ids) if image.parent in images.store.images else 0
        return sum(images.layers.size(c) for c in image.chain_ids[parent_layers:])

    def disk_usage(self) -> list[dict[str, Any]]:
        out = []
        for key, e in self.cache.entries().items():
            out.append({"ID": key[:25], "Parents": [], "Parent": "", "Type": "regular",
                        "Description": e.description, "InUse": False, "Shared": False,
                        "Size": self._own_size(e.image), "CreatedAt": _iso(e.created),
                        "LastUsedAt": _iso(e.last_used), "UsageCount": e.usage})
        for r in self.cache_mounts.records():
            out.append({"ID": r.key[:25], "Parents": [], "Parent": "", "Type": CACHE_MOUNT,
                        "Description": r.description, "InUse": False, "Shared": False,
                        "Size": self.cache_mounts.size(r.key), "CreatedAt": _iso(r.created),
                        "LastUsedAt": _iso(r.last_used), "UsageCount": r.usage})
        return out

    def prune_all(self, filters: dict[str, list[str]], until_ns: int | None, keep_storage: int) -> tuple[list[str], int]:
        """``docker builder prune``: the RUN --mount=type=cache directories its filters and
        ``--keep-storage`` select, then the classic cache records and their intermediate images (a filter
        naming only cache mounts, or ``--keep-storage``, leaves those: they carry no such attributes and
        their layers are shared with images)."""
        deleted, reclaimed = self.cache_mounts.prune(filters, until_ns, keep_storage)
        types = filters.get("type") or ["regular"]
        narrowed = until_ns is not None or filters.get("id") or filters.get("description") or keep_storage
        if "regular" in types and not narrowed:
            more, freed = self.prune()
            deleted, reclaimed = deleted + more, reclaimed + freed
        return deleted, reclaimed

    def prune(self) -> tuple[list[str], int]:
        """Forget every cache record and delete the intermediate images nothing else uses."""
        images = self.engine.images
        with self._prune_lock:
            entries = self.cache.entries()
            before = images.layers.total_size()
            self.cache.clear()
            deleted: list[str] = []
            todo = {e.image: k for k, e in entries.items()}
            progress = True
            while todo and progress:
                progress = False
                for image_id in list(todo):
                    image = images.store.images.get(image_id)
                    if image is None:
                        deleted.append(todo.pop(image_id)[:25])
                        progress = True
                        continue
                    if image.repo_tags or image.repo_digests or images.store.children(image_id) \
                            or images.containers_using(image_id):
                        continue
                    try:
                        images.delete(image_id, force=False, prune=False)
                    except errors.DockyardError:
                        continue
                    deleted.append(todo.pop(image_id)[:25])
                    progress = True
            deleted += [k[:25] for k in todo.values()]
            return deleted, max(0, before - images.layers.total_size())
