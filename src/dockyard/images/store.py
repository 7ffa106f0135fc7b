"""Image store: image configs (in the content store), per-image metadata, references.

The image ID is "sha256:" + sha256 of the config JSON bytes exactly as stored.
On disk, under ``<data-root>/image/``: the config blobs, ``imagedb/<hex>.json``
(parent, times) and ``repositories.json`` (reference → image ID). Every write
is atomic (temp, fsync, rename) and ordered blob → imagedb → references, so a
``kill -9`` at any instant leaves a loadable state; start-up drops anything
dangling half-way. Everything is mirrored in memory: listing never touches disk.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..util import reference as refs
from ..util.atomic import write_json_atomic
from .content import ContentStore
from .layers import chain_ids

log = logging.getLogger("dockyard.images")

_HEX_PREFIX = re.compile(r"(sha256:)?[a-f0-9]{1,64}")  # whole-string (fullmatch)


def parse_created(value: str | None) -> float:
    """Seconds since the epoch for an RFC 3339 timestamp (nanoseconds allowed); 0 when absent."""
    if not value:
        return 0.0
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", value, re.ASCII)
    if not m:
        return 0.0
    base = datetime.datetime.fromisoformat(m.group(1) + (m.group(3) or "Z").replace("Z", "+00:00"))
    frac = float("0" + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac


@dataclass
class Image:
    id: str
    config: dict[str, Any]
    config_size: int
    chain_ids: list[str]
    parent: str = ""
    created_at: float = 0.0  # when this store got it
    last_tag_time: float = 0.0
    size: int = 0
    repo_tags: list[str] = field(default_factory=list)  # familiar form, in tagging order
    repo_digests: list[str] = field(default_factory=list)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids") or [])

    @property
    def top_layer(self) -> str | None:
        return self.chain_ids[-1] if self.chain_ids else None

    @property
    def created(self) -> float:
        return parse_created(self.config.get("created"))

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def short_id(self) -> str:
        return self.id[7:19]


class ImageStore:
    def __init__(self, root: str, content: ContentStore) -> None:
        self.root = root
        self.content = content
        self.db_dir = os.path.join(root, "imagedb")
        self.refs_path = os.path.join(root, "repositories.json")
        os.makedirs(self.db_dir, mode=0o700, exist_ok=True)
        # Writers hold the lock (across their fsyncs) and publish new dicts when done; readers take
        # whichever dicts are current without the lock, so a list never waits on a tag's disk writes.
        self.lock = threading.RLock()
        self.images: dict[str, Image] = {}
        self.references: dict[str, str] = {}  # full normalised reference -> image ID
        self._load()

    # -- persistence -----------------------------------------------------------------
    def _load(self) -> None:
        for name in os.listdir(self.db_dir):
            if not name.endswith(".json") or len(name) != 69:
                continue
            image_id = "sha256:" + name[:64]
            try:
                with open(os.path.join(self.db_dir, name), encoding="utf-8") as f:
                    meta = json.load(f)
                raw = self.content.read(image_id)
                config = json.loads(raw)
            except (OSError, ValueError, errors.NotFound):
                log.warning("dropping image %s: incomplete on disk", image_id)
                self._remove_db(image_id)
                continue
            self.images[image_id] = Image(image_id, config, len(raw), chain_ids(
                list(config.get("rootfs", {}).get("diff_ids") or [])), meta.get("parent", ""),
                meta.get("created_at", 0.0), meta.get("last_tag_time", 0.0))
        try:
            with open(self.refs_path, encoding="utf-8") as f:
                stored = json.load(f)
        except FileNotFoundError:
            stored = {}
        except ValueError:
            log.error("%s is corrupt; starting without references", self.refs_path)
            stored = {}
        for ref, image_id in stored.get("refs", {}).items():
            if image_id in self.images:
                self.references[ref] = image_id
        self._reindex()

    def _write_meta(self, image: Image) -> None:
        write_json_atomic(os.path.join(self.db_dir, image.id[7:] + ".json"),
                          {"parent": image.parent, "created_at": image.created_at,
                           "last_tag_time": image.last_tag_time})

    def _remove_db(self, image_id: str) -> None:
        try:
            os.unlink(os.path.join(self.db_dir, image_id[7:] + ".json"))
        except FileNotFoundError:
            pass

    def _write_refs(self, references: dict[str, str]) -> None:
        write_json_atomic(self.refs_path, {"refs": references})

    def _reindex(self) -> None:
        """Each image's tags and digests anew, each list swapped in whole (a reader sees old or new)."""
        tags: dict[str, list[str]] = {i: [] for i in self.images}
        digests: dict[str, list[str]] = {i: [] for i in self.images}
        for ref, image_id in self.references.items():
            r = refs.parse(ref)
            (digests if r.digest else tags)[image_id].append(r.familiar())
        for image_id, image in self.images.items():
            image.repo_tags, image.repo_digests = tags[image_id], digests[image_id]

    # -- images ------------------------------------------------------------------------
    def add(self, config_bytes: bytes, parent: str = "", size: int = 0) -> tuple[Image, bool]:
        """Register a config; returns (image, created). Layers must already be committed."""
        try:
            config = json.loads(config_bytes)
        except ValueError as e:
            raise errors.InvalidParameter(f"invalid image config: {e}") from None
        if not isinstance(config, dict):
            raise errors.InvalidParameter("invalid image config: not a JSON object")
        with self.lock:
            image_id = self.content.put(config_bytes)
            if image_id in self.images:
                return self.images[image_id], False
            image = Image(image_id, config, len(config_bytes),
                          chain_ids(list(config.get("rootfs", {}).get("diff_ids") or [])),
                          parent, time.time(), 0.0, size)
            self._write_meta(image)
            self.images = {**self.images, image_id: image}
            return image, True

    def delete(self, image_id: str) -> None:
        with self.lock:
            references = {r: i for r, i in self.references.items() if i != image_id}
            self._write_refs(references)
            self.references = references
            self.images = {i: image for i, image in self.images.items() if i != image_id}
            self._remove_db(image_id)
            self.content.delete(image_id)
            self._reindex()

    def get(self, image_id: str) -> Image:
        try:
            return self.images[image_id]
        except KeyError:
            raise errors.NotFound(f"No such image: {image_id}") from None

    def children(self, image_id: str) -> list[Image]:
        return [i for i in self.images.values() if i.parent == image_id]

    def set_size(self, image: Image, size: int) -> None:
        image.size = size

    # -- references --------------------------------------------------------------------
    def tag(self, ref: refs.Reference, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; returns the image it was taken from, if another."""
        with self.lock:
            key = str(ref)
            previous = self.references.get(key)
            references = {**self.references, key: image_id}
            image = self.images[image_id]
            image.last_tag_time = time.time()
            self._write_meta(image)
            self._write_refs(references)
            self.references = references
            self._reindex()
            return previous if previous != image_id else None

    def untag(self, ref: refs.Reference) -> str:
        with self.lock:
            key = str(ref)
            if key not in self.references:
                raise errors.NotFound(f"No such image: {ref.familiar()}")
            image_id = self.references[key]
            references = {r: i for r, i in self.references.items() if r != key}
            self._write_refs(references)
            self.references = references
            self._reindex()
            return image_id

    def refs_of(self, image_id: str) -> list[refs.Reference]:
        return [refs.parse(r) for r, i in self.references.items() if i == image_id]

    # -- lookup ------------------------------------------------------------------------
    def resolve(self, name: str) -> Image:
        """A name, name:tag, name@digest, full ID, ``sha256:`` prefix or unique ID prefix."""
        # lock-free, on the dicts current now: an image deleted between the two reads is not found,
        # as it would not be a moment later
        references = self.references
        images = self.images
        try:
            ref: refs.Reference | None = refs.parse(name)
        except errors.InvalidParameter:
            ref = None
        if ref is not None:
            image_id = references.get(str(ref))
            if image_id is not None and image_id in images:
                return images[image_id]
        if _HEX_PREFIX.fullmatch(name):
            hexpart = name[7:] if name.startswith("sha256:") else name
            matches = [i for i in images if i[7:].startswith(hexpart)]
            if len(matches) == 1:
                return images[matches[0]]
            if len(matches) > 1:
                raise errors.InvalidParameter(f"multiple IDs found with provided prefix: {hexpart}")
        shown = ref.familiar() if ref is not None else name
        raise errors.NotFound(f"No such image: {shown}")
