"""Pull: resolve a reference to a manifest, download missing layers concurrently, unpack in order.

Every blob goes through the content store's verifying ingest, so nothing
unverified is ever visible; the image is registered only once all its layers
are in place, and a failure removes what this pull added (blobs and layers),
so a retry starts clean.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from ..images.streams import InvalidDigest
from ..errors import DockyardError, InvalidParameter, NotFound, Unavailable
from . import manifest as mf
from .auth import AuthConfig
from .client import RegistryError, RegistryUnreachable, Session
from .progress import Progress, short_id
from ..images.reference import Reference
from .names import tag_or_digest
from .session import Sessions

log = logging.getLogger("dockyard.distribution")

READ_CHUNK = 1024 * 1024
MAX_CONFIG_SIZE = 8 * 1024 * 1024
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class Cancelled(DockyardError):
    pass


class LayerTarget(Protocol):
    """What a pull needs from the image store (implemented by images.service)."""

    def blob_writer(self) -> Any: ...

    def delete_blob(self, digest: str) -> None: ...

    def blob_path(self, digest: str) -> str: ...

    def layer_exists(self, chain_id: str) -> bool: ...

    def unpack_layer(self, parent_chain_id: str | None, blob: Any, diff_id: str) -> str: ...

    def release_layer(self, chain_id: str) -> None: ...

    def image_exists(self, image_id: str) -> bool: ...

    def register_pulled(self, config: bytes, tag_ref: str | None, repo_digest: str) -> bool: ...


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


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
    future: "Future[None] | None" = None


class Puller:
    def __init__(self, sessions: Sessions, target: LayerTarget, max_downloads: int) -> None:
        self.sessions = sessions
        self.target = target
        self.max_downloads = max_downloads
        # Layer blobs live in the content store only until unpacked; concurrent pulls of the
        # same layer share the blob, so it is deleted when the last of them is done.
        self._blobs_in_use: Counter[str] = Counter()
        self._blob_lock = threading.Lock()

    # -- resolution --------------------------------------------------------------
    def resolve(self, session: Session, ref: Reference, want: mf.Platform | None
                ) -> tuple[mf.ImageManifest, str, mf.Descriptor | None]:
        """(image manifest, digest for RepoDigests, the chosen index entry if any)."""
        top = self._fetch_manifest(session, ref, tag_or_digest(ref))
        parsed = mf.parse(top.data, top.media_type, ref.familiar())
        chosen = None
        if isinstance(parsed, mf.Index):
            chosen = mf.select(parsed, want or mf.host_platform())
            child = self._fetch_manifest(session, ref, chosen.digest)
            parsed_child = mf.parse(child.data, child.media_type, ref.familiar())
            if not isinstance(parsed_child, mf.ImageManifest):
                raise InvalidParameter(f"manifest list entry {chosen.digest} of {ref.familiar()} is itself a list")
            return parsed_child, top.digest, chosen
        return parsed, top.digest, chosen

    def _fetch_manifest(self, session: Session, ref: Reference, wanted: str) -> Any:
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
        for session in self.sessions.iter_open(ref.domain, ref.path, auth):
            try:
                resolved = self.resolve(session, ref, want)
            except NotFound as e:
                if session.endpoint.mirror:  # the mirror lacks it: ask the next endpoint
                    last = e
                    continue
                raise
            return self._pull_resolved(session, ref, resolved, want, progress, cancel)
        raise last or Unavailable(f"error pulling image {ref.familiar()}: no registry endpoint answered")

    def _pull_resolved(self, session: Session, ref: Reference,
                       resolved: tuple[mf.ImageManifest, str, mf.Descriptor | None], want: mf.Platform | None,
                       progress: Progress, cancel: threading.Event) -> PullResult:
        manifest, repo_digest_value, _ = resolved
        progress.status(f"Pulling from {ref.familiar_name}", tag_or_digest(ref))
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
        for layer in layers:
            layer.present = self.target.layer_exists(layer.chain_id)
        missing = [layer for layer in layers if not layer.present]
        for layer in layers:
            if layer.present:
                progress.layer(layer.id, "Already exists")
        for layer in missing:
            progress.layer(layer.id, "Pulling fs layer")

        added_blobs: list[str] = []
        added_layers: list[str] = []
        lock = threading.Lock()
        try:
            with ThreadPoolExecutor(max_workers=self.max_downloads, thread_name_prefix="pull") as pool:
                for layer in missing:
                    layer.future = pool.submit(self._download, session, ref, layer, progress, cancel,
                                               added_blobs, lock)
                for layer in missing[self.max_downloads:]:
                    progress.layer(layer.id, "Waiting")
                try:
                    self._unpack_in_order(layers, progress, cancel, added_layers)
                except BaseException:
                    cancel.set()
                    raise
            repo_digest = f"{ref.name}@{repo_digest_value}"
            tag_ref = str(ref) if ref.tag else None
            self.target.register_pulled(config_bytes, tag_ref, repo_digest)
        except BaseException:
            for chain in reversed(added_layers):
                self.target.release_layer(chain)
            raise
        finally:
            with self._blob_lock:
                for digest in added_blobs:
                    self._blobs_in_use[digest] -= 1
                    if not self._blobs_in_use[digest]:
                        del self._blobs_in_use[digest]
                        self.target.delete_blob(digest)
        progress.status(f"Digest: {repo_digest_value}")
        return PullResult(manifest.config.digest, repo_digest_value, downloaded=bool(missing))

    def _unpack_in_order(self, layers: list[_Layer], progress: Progress, cancel: threading.Event,
                         added_layers: list[str]) -> None:
        parent: str | None = None
        for layer in layers:
            if not layer.present:
                assert layer.future is not None
                layer.future.result()
                if cancel.is_set():
                    raise Cancelled("pull cancelled")
                meter = progress.meter(layer.id, "Extracting", layer.desc.size)
                with open(self.target.blob_path(layer.desc.digest), "rb") as f:
                    chain = self.target.unpack_layer(parent, _Counting(f, meter), layer.diff_id)
                meter.finish()
                if chain != layer.chain_id:
                    raise InvalidParameter(f"layer {layer.desc.digest} unpacked to {chain}, expected {layer.chain_id}")
                added_layers.append(chain)
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
                  cancel: threading.Event, added: list[str], lock: threading.Lock) -> None:
        desc = layer.desc
        if cancel.is_set():
            raise Cancelled("pull cancelled")
        writer = self.target.blob_writer()
        try:
            try:
                resp = session.open_blob(desc.digest)
            except RegistryError as e:
                raise translate(e, ref, f"error pulling layer {desc.digest} of {ref.familiar()}") from None
            meter = progress.meter(layer.id, "Downloading", desc.size)
            try:
                for chunk in resp.stream(READ_CHUNK, decode_content=False):
                    if cancel.is_set():
                        raise Cancelled("pull cancelled")
                    writer.write(chunk)
                    meter.add(len(chunk))
                    if 0 <= desc.size < writer.size:
                        raise InvalidParameter(f"layer {desc.digest} of {ref.familiar()} is larger than "
                                               f"the {desc.size} bytes its manifest gives")
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise Unavailable(f"error pulling image {ref.familiar()}: download of layer {desc.digest} "
                                  f"failed: {getattr(e, 'reason', None) or e}") from None
            finally:
                resp.release_conn()
            meter.finish()
            if writer.size != desc.size and desc.size >= 0:
                raise Unavailable(f"error pulling image {ref.familiar()}: layer {desc.digest} ended after "
                                  f"{writer.size} of {desc.size} bytes")
            progress.layer(layer.id, "Verifying Checksum")
            with self._blob_lock:
                try:
                    writer.commit(desc.digest)
                except InvalidDigest:
                    raise InvalidParameter(f"error pulling image {ref.familiar()}: filesystem layer verification "
                                           f"failed for digest {desc.digest}") from None
                self._blobs_in_use[desc.digest] += 1
            with lock:
                added.append(desc.digest)
            progress.layer(layer.id, "Download complete")
        finally:
            writer.abort()


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
