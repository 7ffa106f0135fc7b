"""Pull: resolve a reference to a manifest, download missing layers concurrently, commit in order.

Nothing unverified ever becomes visible. With a snapshotter whose layers are
independent (overlay), each download streams straight through decompression,
hashing and extraction into the layer store's build dir (two-phase: the
blob's digest and the diff ID are checked before the layer is committed).
Where a layer must be built on its parent's files (vfs), blobs go to the
content store's verifying ingest first and are unpacked in order. The image
is registered only once all its layers are in place; a failure releases what
this pull added (blobs and layers), so a retry starts clean.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from ..errors import DockyardError, InvalidParameter, NotFound, Unavailable
from ..images.content import ContentStore
from ..images.layers import LayerStore, PendingLayer, chain_ids
from ..images.store import ImageStore
from ..images.streams import InvalidDigest
from ..util.reference import Reference
from . import manifest as mf
from .auth import AuthConfig
from .blobindex import BlobIndex, BlobSource
from .client import RegistryError, RegistryUnreachable, Session
from .names import tag_or_digest
from .progress import Meter, Progress, short_id
from .session import Sessions

log = logging.getLogger("dockyard.distribution")

READ_CHUNK = 1024 * 1024
MAX_CONFIG_SIZE = 8 * 1024 * 1024
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class Cancelled(DockyardError):
    pass


class ImageParts(Protocol):
    """The parts of the image service a pull writes into."""

    content: ContentStore
    layers: LayerStore
    store: ImageStore


@dataclass
class PullResult:
    image_id: str
    repo_digest: str
    downloaded: bool


@dataclass
class _Layer:
    desc: mf.Descriptor
    diff_id: str
    chain_id: str
    id: str
    present: bool = False
    future: "Future[PendingLayer | None] | None" = None


class Puller:
    def __init__(self, sessions: Sessions, images: ImageParts, index: BlobIndex, max_downloads: int) -> None:
        self.sessions = sessions
        self.images = images
        self.index = index
        self.max_downloads = max_downloads
        # Layer blobs (vfs path) live in the content store only until unpacked; concurrent pulls of
        # the same layer share the blob, so it is deleted when the last of them is done with it.
        self._blobs_in_use: Counter[str] = Counter()
        self._blob_lock = threading.Lock()

    # -- resolution --------------------------------------------------------------
    def resolve(self, session: Session, ref: Reference, want: mf.Platform | None
                ) -> tuple[mf.ImageManifest, str]:
        """(image manifest, digest for RepoDigests: the list's when pulled through one)."""
        top = self.fetch_manifest(session, ref, tag_or_digest(ref))
        parsed = mf.parse(top.data, top.media_type, ref.familiar())
        if isinstance(parsed, mf.Index):
            chosen = mf.select(parsed, want or mf.host_platform())
            child = self.fetch_manifest(session, ref, chosen.digest)
            parsed_child = mf.parse(child.data, child.media_type, ref.familiar())
            if not isinstance(parsed_child, mf.ImageManifest):
                raise InvalidParameter(f"manifest list entry {chosen.digest} of {ref.familiar()} is itself a list")
            return parsed_child, top.digest
        return parsed, top.digest

    def fetch_manifest(self, session: Session, ref: Reference, wanted: str) -> Any:
        try:
            got = session.get_manifest(wanted, mf.ACCEPT)
        except RegistryError as e:
            raise translate(e, ref) from None
        except RegistryUnreachable as e:
            raise Unavailable(f"error pulling image {ref.familiar()}: {e}") from None
        if len(got.data) > MAX_MANIFEST_SIZE:
            raise InvalidParameter(f"manifest for {ref.familiar()} is too large")
        actual = mf.sha256_digest(got.data)
        expected = wanted if wanted.startswith("sha256:") else got.digest
        if expected and expected.startswith("sha256:") and expected != actual:
            raise InvalidParameter(f"manifest verification failed for {ref.familiar()}: "
                                   f"digest {actual} does not match {expected}")
        got.digest = actual
        return got

    # -- one tag or digest -----------------------------------------------------------
    def pull(self, ref: Reference, auth: AuthConfig, want: mf.Platform | None, progress: Progress,
             cancel: threading.Event) -> PullResult:
        last: Exception | None = None
        for session in self.sessions.iter_open(ref.domain, ref.path, auth, by_digest=bool(ref.digest)):
            try:
                resolved = self.resolve(session, ref, want)
            except NotFound as e:
                if session.endpoint.mirror:  # the mirror lacks it: ask the next endpoint
                    last = e
                    continue
                raise
            return self._pull_resolved(session, ref, resolved, want, progress, cancel)
        raise last or Unavailable(f"error pulling image {ref.familiar()}: no registry endpoint answered")

    def _pull_resolved(self, session: Session, ref: Reference, resolved: tuple[mf.ImageManifest, str],
                       want: mf.Platform | None, progress: Progress, cancel: threading.Event) -> PullResult:
        manifest, repo_digest_value = resolved
        progress.status(f"Pulling from {ref.path}", tag_or_digest(ref))
        config_bytes = self._fetch_config(session, ref, manifest.config)
        try:
            config = json.loads(config_bytes)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidParameter(f"invalid image config {manifest.config.digest} for {ref.familiar()}") from None
        if want is not None:
            mf.check_config_platform(config, want, ref.familiar())
        if len(diff_ids) != len(manifest.layers):
            raise InvalidParameter(f"image {ref.familiar()}: the manifest lists {len(manifest.layers)} layers but "
                                   f"the config has {len(diff_ids)} diff IDs")
        for desc in manifest.layers:
            if desc.media_type in mf.FOREIGN_LAYERS:
                raise InvalidParameter(f"image {ref.familiar()} has a foreign layer {desc.digest}, "
                                       f"which dockyard does not download")
        layers = [_Layer(desc, diff_id, chain, short_id(desc.digest))
                  for desc, diff_id, chain in zip(manifest.layers, diff_ids, chain_ids(diff_ids))]
        store = self.images.layers
        held: list[str] = []  # layer references this pull holds while it works
        added_blobs: list[str] = []
        try:
            for layer in layers:
                if store.exists(layer.chain_id):
                    try:
                        store.acquire([layer.chain_id])
                    except NotFound:  # removed just now by an rmi
                        continue
                    held.append(layer.chain_id)
                    layer.present = True
            missing = [layer for layer in layers if not layer.present]
            for layer in layers:
                if layer.present:
                    progress.layer(layer.id, "Already exists")
            for layer in missing:
                progress.layer(layer.id, "Pulling fs layer")
            streamed = store.snap.independent_layers
            pool = ThreadPoolExecutor(max_workers=self.max_downloads, thread_name_prefix="pull")
            try:
                for layer in missing:
                    layer.future = pool.submit(self._download, session, ref, layer, progress, cancel,
                                               streamed, added_blobs)
                for layer in missing[self.max_downloads:]:
                    progress.layer(layer.id, "Waiting")
                self._commit_in_order(layers, progress, cancel, streamed, held)
            except BaseException:
                cancel.set()
                pool.shutdown(wait=True)
                for layer in missing:  # unpacked but never committed
                    if layer.chain_id in held or layer.future is None or layer.future.exception() is not None:
                        continue
                    pending = layer.future.result()
                    if pending is not None:
                        store.discard(pending)
                raise
            finally:
                pool.shutdown(wait=True)
            image_id, moved = self._register(ref, config_bytes, repo_digest_value,
                                             [layer.chain_id for layer in layers])
        finally:
            if held:
                store.release(held)
            self._drop_blobs(added_blobs)
        for layer in layers:
            self.index.add(layer.diff_id, BlobSource(layer.desc.digest, layer.desc.size, layer.desc.media_type,
                                                     ref.name))
        progress.status(f"Digest: {repo_digest_value}")
        # dockerd's "Downloaded newer image" means the reference pulled now points at the image and did
        # not before, whether or not any layer had to be fetched
        return PullResult(image_id, repo_digest_value, downloaded=moved)

    def _register(self, ref: Reference, config_bytes: bytes, repo_digest: str, chains: list[str]
                  ) -> tuple[str, bool]:
        """The image's ID, and whether the reference pulled (tag, or digest) was moved to it."""
        image_store = self.images.store
        by_digest = Reference(ref.domain, ref.path, None, repo_digest)
        with image_store.lock:
            image, created = image_store.add(config_bytes, size=sum(self.images.layers.size(c) for c in chains))
            if created:
                self.images.layers.acquire(chains)  # the image's own references
            moved = image_store.references.get(str(ref if ref.tag else by_digest)) != image.id
            if ref.tag:
                image_store.tag(ref, image.id)
            image_store.tag(by_digest, image.id)
        return image.id, moved

    def _commit_in_order(self, layers: list[_Layer], progress: Progress, cancel: threading.Event,
                         streamed: bool, held: list[str]) -> None:
        store = self.images.layers
        parent: str | None = None
        for layer in layers:
            if not layer.present:
                assert layer.future is not None
                pending = layer.future.result()
                if cancel.is_set():
                    raise Cancelled("pull cancelled")
                meter = progress.meter(layer.id, "Extracting", layer.desc.size)
                if pending is None:  # vfs: unpack now, on top of the parent's files
                    with open(self.images.content.path(layer.desc.digest), "rb") as f:
                        pending = store.unpack(_Counting(f, meter), parent)
                    _check_diff_id(pending, layer, store)
                else:
                    meter.add(layer.desc.size)
                meter.finish()
                chain = store.commit(pending, parent)
                store.acquire([chain])
                held.append(chain)
                progress.layer(layer.id, "Pull complete")
            parent = layer.chain_id

    def _fetch_config(self, session: Session, ref: Reference, desc: mf.Descriptor) -> bytes:
        if desc.size > MAX_CONFIG_SIZE:
            raise InvalidParameter(f"image config of {ref.familiar()} is too large ({desc.size} bytes)")
        try:
            resp = session.request("GET", f"blobs/{desc.digest}")
        except RegistryError as e:
            raise translate(e, ref) from None
        except RegistryUnreachable as e:
            raise Unavailable(f"error pulling image {ref.familiar()}: {e}") from None
        data = resp.data
        if mf.sha256_digest(data) != desc.digest:
            raise InvalidParameter(f"image config verification failed for {ref.familiar()}: digest {desc.digest}")
        return data

    def _download(self, session: Session, ref: Reference, layer: _Layer, progress: Progress,
                  cancel: threading.Event, streamed: bool, added: list[str]) -> PendingLayer | None:
        """Fetch one layer blob: unpacked into a pending layer (streamed) or into the content store."""
        desc = layer.desc
        if cancel.is_set():
            raise Cancelled("pull cancelled")
        try:
            resp = session.open_blob(desc.digest)
        except RegistryError as e:
            raise translate(e, ref, f"error pulling layer {desc.digest} of {ref.familiar()}") from None
        except RegistryUnreachable as e:
            raise Unavailable(f"error pulling image {ref.familiar()}: {e}") from None
        body = _Body(resp, progress.meter(layer.id, "Downloading", desc.size), desc, ref, cancel)
        try:
            if streamed:
                pending = self.images.layers.unpack(body, blob_digest=lambda: body.digest)  # type: ignore[arg-type]
                body.finish()
                progress.layer(layer.id, "Verifying Checksum")
                if pending.blob_digest != desc.digest:
                    self.images.layers.discard(pending)
                    raise _verification_failed(ref, desc)
                _check_diff_id(pending, layer, self.images.layers)
                progress.layer(layer.id, "Download complete")
                return pending
            with self.images.content.writer() as writer:
                while chunk := body.read(READ_CHUNK):
                    writer.write(chunk)
                body.finish()
                progress.layer(layer.id, "Verifying Checksum")
                with self._blob_lock:
                    try:
                        writer.commit(desc.digest)
                    except InvalidDigest:
                        raise _verification_failed(ref, desc) from None
                    self._blobs_in_use[desc.digest] += 1
                    added.append(desc.digest)
            progress.layer(layer.id, "Download complete")
            return None
        except InvalidParameter as e:
            # The layer store calls a truncated or corrupted stream bad data; say what really happened.
            if body.error is not None:
                raise body.error from None
            if streamed:
                try:
                    body.finish()
                except DockyardError as transport:
                    raise transport from None
                if body.digest != desc.digest:
                    raise _verification_failed(ref, desc) from None
            raise e
        finally:
            resp.release_conn()

    def _drop_blobs(self, digests: list[str]) -> None:
        with self._blob_lock:
            for digest in digests:
                self._blobs_in_use[digest] -= 1
                if not self._blobs_in_use[digest]:
                    del self._blobs_in_use[digest]
                    self.images.content.delete(digest)


class _Body:
    """A layer blob's HTTP body as a file: counts progress, enforces the size, notes transport errors."""

    def __init__(self, resp: Any, meter: Meter, desc: mf.Descriptor, ref: Reference, cancel: threading.Event) -> None:
        self._resp = resp
        self._meter = meter
        self._desc = desc
        self._ref = ref
        self._cancel = cancel
        self.size = 0
        self.error: DockyardError | None = None
        # the one hash of the blob as received: the layer store uses it, and a blob that fails to
        # decompress is only explained by its digest
        self._hash = hashlib.sha256()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def read(self, n: int = -1) -> bytes:
        if self._cancel.is_set():
            raise Cancelled("pull cancelled")
        try:
            data = self._resp.read(n if n and n > 0 else READ_CHUNK, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            self.error = Unavailable(f"error pulling image {self._ref.familiar()}: download of layer "
                                     f"{self._desc.digest} failed: {getattr(e, 'reason', None) or e}")
            raise self.error from None
        self.size += len(data)
        self._hash.update(data)
        if 0 <= self._desc.size < self.size:
            self.error = InvalidParameter(f"layer {self._desc.digest} of {self._ref.familiar()} is larger than "
                                          f"the {self._desc.size} bytes its manifest gives")
            raise self.error
        self._meter.add(len(data))
        return data

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        """Called at the end of the stream: a short body is a broken download, not a bad layer."""
        while self.read(READ_CHUNK):  # the tar may end before the compressed stream does
            pass
        self._meter.finish()
        if self._desc.size >= 0 and self.size != self._desc.size:
            self.error = Unavailable(f"error pulling image {self._ref.familiar()}: layer {self._desc.digest} "
                                     f"ended after {self.size} of {self._desc.size} bytes")
            raise self.error


def _verification_failed(ref: Reference, desc: mf.Descriptor) -> InvalidParameter:
    return InvalidParameter(f"error pulling image {ref.familiar()}: filesystem layer verification failed "
                            f"for digest {desc.digest}")


def _check_diff_id(pending: PendingLayer, layer: _Layer, store: LayerStore) -> None:
    if pending.diff_id != layer.diff_id:
        store.discard(pending)
        raise InvalidParameter(f"layer {layer.desc.digest} has diff ID {pending.diff_id}, but the image config "
                               f"says {layer.diff_id}")


class _Counting:
    """Reports bytes read (the compressed blob) to a progress meter."""

    def __init__(self, raw: Any, meter: Any) -> None:
        self._raw = raw
        self._meter = meter

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._meter.add(len(data))
        return data

    def readable(self) -> bool:
        return True


def translate(e: RegistryError, ref: Reference, prefix: str = "") -> DockyardError:
    """dockerd's wording for registry errors during a pull."""
    if e.code == "MANIFEST_UNKNOWN" or (e.status == 404 and not e.code and not prefix):
        return NotFound(f"manifest for {ref.familiar()} not found: {e}")
    if e.code in ("NAME_UNKNOWN", "UNAUTHORIZED", "DENIED") or e.status in (401, 403):
        return NotFound(f"pull access denied for {ref.familiar_name}, repository does not exist or may require "
                        f"'docker login': {e}")
    if e.code == "BLOB_UNKNOWN" or e.status == 404:
        return NotFound(f"{prefix or 'error pulling ' + ref.familiar()}: {e}")
    return Unavailable(f"{prefix or 'error pulling image ' + ref.familiar()}: {e}")
