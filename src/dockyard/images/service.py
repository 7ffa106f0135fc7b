"""The image service (``engine.images``): load, save, import, list, inspect, tag, delete, prune.

It joins the content store, the layer store and the image store, keeps the
rmi/prune semantics of dockerd's daemon/images package, and publishes image
events. Containers and build plug in through ``set_usage_check`` (who uses an
image), ``resolve`` and ``layer_chain``, and make images with
``create_image_from_layer``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import IO, Any, Callable, Iterator

from ..util import timefmt
from .. import errors
from ..util import host
from ..storage.snapshotter import Snapshotter
from ..util.filters import LabelSelector, match_labels
from ..util import reference as refs
from . import pathmatch
from .changes import apply_changes
from .content import ContentStore
from .layers import LayerStore, PendingLayer, chain_id
from .load import ArchiveReader, ExistingLayer, LoadedImage
from .save import write_archive
from .store import Image, ImageStore, chain_ids, parse_created

log = logging.getLogger("dockyard.images")

UsageCheck = Callable[[str], list[str]]
RunningCheck = Callable[[str], bool]
Publish = Callable[[str, str, str, dict[str, str]], Any]



def now_rfc3339() -> str:
    return timefmt.rfc3339_nano(time.time_ns())


class ImageService:
    def __init__(self, data_root: str, snapshotter: Snapshotter, publish: Publish) -> None:
        root = os.path.join(data_root, "image")
        self.content = ContentStore(root)
        self.layers = LayerStore(snapshotter)
        self.store = ImageStore(root, self.content)
        self._publish = publish
        self._usage: UsageCheck = lambda image_id: []
        self._running: RunningCheck = lambda container_id: False
        self._lock = threading.RLock()
        for image in list(self.store.images.values()):
            if not all(self.layers.exists(c) for c in image.chain_ids):
                log.warning("dropping image %s: layers missing", image.id)
                self.store.delete(image.id)
                continue
            self.layers.acquire(image.chain_ids)
            image.size = self._size(image)
        removed = self.layers.garbage_collect()
        if removed:
            log.info("removed %d unreferenced layers", len(removed))

    # -- hooks for containers and build ------------------------------------------------
    def set_usage_check(self, fn: UsageCheck, running: RunningCheck | None = None) -> None:
        """``fn(image_id)`` lists the IDs of containers using an image; ``running(id)`` tells which run."""
        self._usage = fn
        if running is not None:
            self._running = running

    def resolve(self, name: str) -> Image:
        return self.store.resolve(name)

    def layer_chain(self, image_id: str) -> list[str]:
        """The image's layer directories, bottom to top."""
        return [self.layers.path(c) for c in self.store.get(image_id).chain_ids]

    def _size(self, image: Image) -> int:
        return sum(self.layers.size(c) for c in image.chain_ids)

    def _event(self, action: str, image_id: str, name: str | None = None) -> None:
        self._publish("image", action, image_id, {"name": name or image_id})

    # -- load --------------------------------------------------------------------------
    def load(self, stream: IO[bytes]) -> list[str]:
        """Read an image archive; returns the "Loaded image..." lines."""
        reader = ArchiveReader(self.layers)
        try:
            reader.read(stream)
            loaded = reader.images()
            lines: list[str] = []
            with self._lock:
                for item in loaded:
                    image = self._register(item)
                    self._event("load", image.id)
                    if item.tags:
                        lines += [f"Loaded image: {t.familiar()}" for t in item.tags]
                    else:
                        lines.append(f"Loaded image ID: {image.id}")
            return lines
        finally:
            reader.discard()

    def _register(self, item: LoadedImage) -> Image:
        parent: str | None = None
        committed: list[str] = []
        used: dict[int, str] = {}
        for layer in item.layers:
            if isinstance(layer, ExistingLayer):
                cid = self.layers.clone(layer.chain_id, parent) if not self.layers.exists(
                    chain_id(parent, layer.diff_id)) else chain_id(parent, layer.diff_id)
            elif id(layer) in used:
                cid = self.layers.clone(used[id(layer)], parent)
            else:
                cid = self.layers.commit(layer, parent)
                used[id(layer)] = cid
            committed.append(cid)
            parent = cid
        self.layers.acquire(committed)
        try:
            image, created = self.store.add(item.config)
        except BaseException:
            self.layers.release(committed)
            raise
        if not created:
            self.layers.release(committed)
        image.size = self._size(image)
        for ref in item.tags:
            self._tag_ref(ref, image)
        return image

    # -- tags ----------------------------------------------------------------------------
    def tag(self, name: str, repo: str, tag: str | None) -> None:
        image = self.resolve(name)
        ref = refs.parse_repo_tag(repo, tag)
        with self._lock:
            self._tag_ref(ref, image)
        self._event("tag", image.id, ref.familiar())

    def _tag_ref(self, ref: refs.Reference, image: Image) -> None:
        # the image the reference is taken from keeps existing, dangling if that was its last one
        self.store.tag(ref, image.id)

    # -- list / inspect / history ------------------------------------------------------------
    def list(self, all_images: bool = False, dangling: bool | None = None, references: list[str] | None = None,
             labels: list[str] | None = None, before: str | None = None, since: str | None = None,
             until_ns: int | None = None) -> list[Image]:
        """Images newest first, filtered as `docker images` filters them."""
        before_t = self.resolve(before).created if before else None
        since_t = self.resolve(since).created if since else None
        until = until_ns / 1e9 if until_ns is not None else None
        patterns = references or []
        out = []
        images = list(self.store.images.values())  # the store's copy-on-write index: no lock to wait on
        parents = {i.parent for i in images if i.parent}
        for image in images:
            if dangling is not None and dangling != (not image.repo_tags):
                continue
            if not all_images and not image.repo_tags and not image.repo_digests and image.id in parents:
                continue  # intermediate image
            if before_t is not None and image.created >= before_t:
                continue
            if since_t is not None and image.created <= since_t:
                continue
            if until is not None and image.created > until:
                continue
            if labels and not match_labels(image.labels, labels):
                continue
            if patterns and not any(ref_matches(p, t) for p in patterns for t in image.repo_tags + image.repo_digests):
                continue
            out.append(image)
        out.sort(key=lambda i: i.created, reverse=True)
        return out

    def containers_using(self, image_id: str) -> list[str]:
        return list(self._usage(image_id))

    def history(self, name: str) -> list[dict[str, Any]]:
        image = self.resolve(name)
        entries = image.config.get("history") or []
        layer_sizes = [self.layers.size(c) for c in image.chain_ids]
        rows = []
        li = 0
        for h in entries:
            empty = bool(h.get("empty_layer"))
            size = 0
            if not empty and li < len(layer_sizes):
                size = layer_sizes[li]
                li += 1
            rows.append({"Id": "<missing>", "Created": int(parse_created(h.get("created"))),
                         "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                         "Comment": h.get("comment", "")})
        if not rows:
            rows = [{"Id": "<missing>", "Created": int(image.created), "CreatedBy": "", "Tags": None,
                     "Size": image.size, "Comment": ""}]
        rows.reverse()
        rows[0]["Id"] = image.id
        rows[0]["Tags"] = list(image.repo_tags) or None
        return rows

    # -- delete / prune ----------------------------------------------------------------
    def delete(self, name: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        with self._lock:
            image = self.resolve(name)
            records: list[dict[str, str]] = []
            image_refs = self.store.refs_of(image.id)
            by_name = self._named(name, image)
            quiet = False
            if by_name is not None:
                if not force and _single_reference(image_refs):
                    users = self._usage(image.id)
                    if users:
                        raise errors.Conflict(
                            f'conflict: unable to remove repository reference "{name}" (must force) - container '
                            f"{users[0][:12]} is using its referenced image {image.short_id}")
                self.store.untag(by_name)
                records.append({"Untagged": by_name.familiar()})
                self._event("untag", image.id)
                remaining = self.store.refs_of(image.id)
                # digest references of the same repository go with its last tag
                if remaining and all(r.digest and r.name == by_name.name for r in remaining) and \
                        not any(not r.digest for r in remaining):
                    for r in remaining:
                        self.store.untag(r)
                        records.append({"Untagged": r.familiar()})
                    remaining = []
                if remaining:
                    return records
                quiet = True
            elif image_refs and (force or _single_reference(image_refs)):
                if not force:
                    self._check_conflict(image, hard=True, soft=True, active_ref=False)
                for r in image_refs:
                    self.store.untag(r)
                    records.append({"Untagged": r.familiar()})
                    self._event("untag", image.id)
            self._delete_helper(image, records, force, prune, quiet)
            return records

    def _named(self, name: str, image: Image) -> refs.Reference | None:
        """The reference ``name`` means when it names (rather than ID-prefixes) ``image``."""
        try:
            ref = refs.parse(name)
        except errors.InvalidParameter:
            return None
        return ref if self.store.references.get(str(ref)) == image.id else None

    def _check_conflict(self, image: Image, hard: bool, soft: bool, active_ref: bool = True) -> tuple[str, bool] | None:
        """dockerd's checkImageDeleteConflict: (message, used_by_container) of the first conflict."""
        def fail(msg: str, forceable: bool) -> None:
            how = "must be forced" if forceable else "cannot be forced"
            raise errors.Conflict(f"conflict: unable to delete {image.short_id} ({how}) - {msg}")

        users = self._usage(image.id)
        if hard and self.store.children(image.id):
            fail("image has dependent child images", False)
        if hard:
            for cid in users:
                if self._running(cid):
                    fail(f"image is being used by running container {cid[:12]}", False)
        if soft and active_ref and self.store.refs_of(image.id):
            fail("image is referenced in one or more repositories", True)
        if soft:
            for cid in users:
                if not self._running(cid):
                    fail(f"image is being used by stopped container {cid[:12]}", True)
        return None

    def _delete_helper(self, image: Image, records: list[dict[str, str]], force: bool, prune: bool,
                       quiet: bool) -> None:
        try:
            self._check_conflict(image, hard=True, soft=not force)
        except errors.Conflict:
            if quiet and (self.store.refs_of(image.id) or self._usage(image.id)
                          or self.store.children(image.id)):
                return
            raise
        parent = image.parent
        for r in self.store.refs_of(image.id):
            self.store.untag(r)
            records.append({"Untagged": r.familiar()})
        self.store.delete(image.id)
        freed = self.layers.release(image.chain_ids)
        records.append({"Deleted": image.id})
        records.extend({"Deleted": c} for c in freed)
        self._event("delete", image.id)
        if prune and parent and parent in self.store.images:
            self._delete_helper(self.store.images[parent], records, False, True, True)

    def prune(self, dangling_only: bool = True, selector: LabelSelector = LabelSelector()) -> tuple[list[dict[str, str]], int]:
        """Delete unused images (only untagged ones when ``dangling_only``) that ``selector`` chooses;
        (records, bytes freed)."""
        deleted: list[dict[str, str]] = []
        with self._lock:
            sizes = {c: self.layers.size(c) for c in self.layers.all()}
            parents = {i.parent for i in self.store.images.values() if i.parent}
            for image in list(self.store.images.values()):
                if image.id not in self.store.images or image.id in parents or self._usage(image.id):
                    continue
                if not selector.selects(image.labels, image.created * 1e9):
                    continue
                image_refs = self.store.refs_of(image.id)
                try:
                    if image_refs:
                        if dangling_only and any(not r.digest for r in image_refs):
                            continue
                        for r in image_refs:
                            deleted += self.delete(str(r), False, True)
                    else:
                        deleted += self.delete(image.id, False, True)
                except errors.Conflict:
                    continue
        reclaimed = sum(sizes.get(d["Deleted"], 0) for d in deleted if "Deleted" in d)
        self._publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return deleted, reclaimed

    # -- save ----------------------------------------------------------------------------
    def save(self, names: list[str]) -> Iterator[bytes]:
        """The `docker save` archive of ``names`` (each a reference or an ID)."""
        picked: dict[str, tuple[Image, list[refs.Reference]]] = {}
        for name in names:
            image = self.resolve(name)
            entry = picked.setdefault(image.id, (image, []))
            named = self._named(name, image)
            if named is not None and not named.digest:
                entry[1].append(named)
            elif named is None:
                try:
                    ref = refs.parse(name, default_tag=False)
                except errors.InvalidParameter:
                    ref = None
                if ref is not None and ref.tag is None and ref.digest is None:
                    # a repository name saves all of its tags
                    entry[1].extend(r for r in self.store.refs_of(image.id) if r.name == ref.name and r.tag)
        for image, _ in picked.values():
            self._event("save", image.id)
        return write_archive(self.layers, self.content, list(picked.values()))

    # -- import / commit ---------------------------------------------------------------------
    def import_image(self, stream: IO[bytes], repo: str | None, tag: str | None, changes: list[str],
                     message: str, source: str = "-") -> Image:
        ref = refs.parse_repo_tag(repo, tag) if repo else None
        image = self.create_image_from_layer(None, stream, changes, comment=message or f"Imported from {source}",
                                             history_comment=message or f"Imported from {source}")
        if ref is not None:
            with self._lock:
                self._tag_ref(ref, image)
        self._event("import", image.id)
        return image

    def create_image_from_layer(self, parent_id: str | None, layer: IO[bytes] | None, changes: list[str],
                                comment: str = "", history_comment: str = "", created_by: str = "",
                                author: str = "", config_overrides: dict[str, Any] | None = None,
                                created: str | None = None) -> Image:
        """A new image: ``layer`` (a tar stream, or None for a metadata-only step) on ``parent_id``.

        ``changes`` are Dockerfile instructions applied to the config; import
        is the ``parent_id=None`` case, commit and build pass a parent.
        ``created`` pins the timestamp (reproducible builds); default now.
        """
        parent = self.store.get(parent_id) if parent_id else None
        base_chain = parent.top_layer if parent else None
        pending: PendingLayer | None = self.layers.unpack(layer, base_chain) if layer is not None else None
        try:
            created = created or now_rfc3339()
            if parent is not None:
                config = json.loads(json.dumps(parent.config))
                for key in ("container", "container_config", "id", "parent"):
                    config.pop(key, None)
            else:
                config = {"architecture": host.go_arch(), "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            config["created"] = created
            config["docker_version"] = _version()
            if comment:
                config["comment"] = comment
            elif "comment" in config:
                del config["comment"]
            if author:
                config["author"] = author
            config["config"] = apply_changes(dict(config.get("config") or {}), changes)
            if config_overrides:
                config["config"].update(config_overrides)
            history = {"created": created}
            if created_by:
                history["created_by"] = created_by
            if history_comment:
                history["comment"] = history_comment
            if author:
                history["author"] = author
            if pending is None:
                history["empty_layer"] = True
            else:
                config["rootfs"]["diff_ids"] = list(config["rootfs"].get("diff_ids") or []) + [pending.diff_id]
            config.setdefault("history", []).append(history)
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            with self._lock:
                chain = list(parent.chain_ids) if parent else []
                if pending is not None:
                    chain.append(self.layers.commit(pending, base_chain))
                    pending = None
                return self._add_locked(config_bytes, chain, parent_id)
        finally:
            if pending is not None:
                self.layers.discard(pending)

    def create_image_from_config(self, config: dict[str, Any], parent_id: str | None) -> Image:
        """An image whose layers are all in the store already (the build cache restoring a --cache-from step)."""
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        chain = chain_ids(list(config.get("rootfs", {}).get("diff_ids") or []))
        with self._lock:
            return self._add_locked(config_bytes, chain, parent_id)

    def _add_locked(self, config_bytes: bytes, chain: list[str], parent_id: str | None) -> Image:
        """The image of ``config_bytes`` over ``chain``, holding the layers once per image (under the lock)."""
        self.layers.acquire(chain)
        try:
            image, fresh = self.store.add(config_bytes, parent=parent_id or "")
        except BaseException:
            self.layers.release(chain)
            raise
        if not fresh:
            self.layers.release(chain)
        image.size = self._size(image)
        return image

    # -- usage ---------------------------------------------------------------------------
    def count(self) -> int:
        return len(self.store.images)

    def disk_usage(self) -> tuple[list[dict[str, Any]], int]:
        """Image summaries with SharedSize and Containers computed, and the total layer size."""
        with self.store.lock:
            images = list(self.store.images.values())
            counts = self.layer_use_counts()
            out = [self.summary(i, shared_size=self.shared_size(i, counts), containers=len(self._usage(i.id)))
                   for i in images]
            return out, self.layers.total_size()

    def summary(self, image: Image, shared_size: int = -1, containers: int = -1) -> dict[str, Any]:
        """The Engine API's ImageSummary."""
        return {
            "Id": image.id,
            "ParentId": image.parent,
            "RepoTags": list(image.repo_tags),
            "RepoDigests": list(image.repo_digests),
            "Created": int(image.created),
            "Size": image.size,
            "SharedSize": shared_size,
            "Labels": image.labels,
            "Containers": containers,
        }

    def shared_size(self, image: Image, counts: dict[str, int] | None = None) -> int:
        counts = counts if counts is not None else self.layer_use_counts()
        return sum(self.layers.size(c) for c in image.chain_ids if counts.get(c, 0) > 1)

    def layer_use_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for image in self.store.images.values():
            for c in image.chain_ids:
                counts[c] = counts.get(c, 0) + 1
        return counts


def _single_reference(image_refs: list[refs.Reference]) -> bool:
    """At most one tag and all references in one repository (dockerd's isSingleReference)."""
    tags = [r for r in image_refs if not r.digest]
    if len(tags) > 1:
        return False
    return len({r.name for r in image_refs}) <= 1


def ref_matches(pattern: str, familiar: str) -> bool:
    """dockerd's ``reference`` filter (distribution's FamiliarMatch): the glob on the familiar reference
    (``name:tag`` or ``name@digest``), else on the familiar name alone; a bad pattern is the client's error."""
    try:
        return pathmatch.match(pattern, familiar) or pathmatch.match(pattern, refs.parse(familiar).familiar_name)
    except pathmatch.BadPattern as e:
        raise errors.InvalidParameter(str(e)) from None
    except errors.DockyardError:
        return False


def _version() -> str:
    from .. import __version__

    return __version__
