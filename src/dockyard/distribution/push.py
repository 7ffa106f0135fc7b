"""Push: layers (skipped, mounted or compressed and uploaded, concurrently), config, then the manifest.

For each layer the blob index names blobs known to hold it: if the target
repository has one (HEAD) it is not sent again; if a sibling repository on
the same registry has one it is mounted. Otherwise the layer's tar is
gzip-compressed (deterministically, so a re-push yields the same digest) and
streamed to the registry in one chunked PATCH while its digest is computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

from ..errors import DockyardError, NotFound, Unauthorized, Unavailable
from ..images.store import Image
from ..util.reference import Reference
from . import manifest as mf
from .auth import AuthConfig
from .blobindex import BlobIndex, BlobSource
from .client import RegistryError, RegistryUnreachable, Session
from .progress import Progress, short_id
from .pull import ImageParts
from .session import Sessions

log = logging.getLogger("dockyard.distribution")

GZIP_LEVEL = 6  # Go's gzip.DefaultCompression, what dockerd pushes with
COMPRESS_CHUNK = 1024 * 1024
# gzip member header with mtime 0 and no name: the same tar always compresses to the same blob
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def gzip_stream(chunks: Iterator[bytes], on_input: Callable[[int], None]) -> Iterator[bytes]:
    comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = 0
    size = 0
    yield _GZIP_HEADER
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        out = comp.compress(chunk)
        on_input(len(chunk))
        if out:
            yield out
    yield comp.flush() + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


class Pusher:
    def __init__(self, sessions: Sessions, images: ImageParts, index: BlobIndex, max_uploads: int) -> None:
        self.sessions = sessions
        self.images = images
        self.index = index
        self.max_uploads = max_uploads

    def push(self, ref: Reference, image: Image, auth: AuthConfig, progress: Progress,
             cancel: threading.Event) -> tuple[str, int]:
        """Push ``image`` as ``ref`` (which has a tag); returns (manifest digest, size)."""
        try:
            session = self.sessions.open(ref.domain, ref.path, auth, ("pull", "push"), push=True)
        except Unavailable as e:
            raise Unavailable(f"error pushing {ref.familiar()}: {e}") from None
        try:
            return self._push(session, ref, image, progress, cancel)
        except RegistryError as e:
            if e.status in (401, 403) or e.code in ("UNAUTHORIZED", "DENIED"):
                raise Unauthorized(str(e)) from None
            raise Unavailable(f"error pushing {ref.familiar()}: {e}") from None
        except RegistryUnreachable as e:
            raise Unavailable(f"error pushing {ref.familiar()}: {e}") from None

    def _push(self, session: Session, ref: Reference, image: Image, progress: Progress,
              cancel: threading.Event) -> tuple[str, int]:
        diff_ids = image.diff_ids
        ids = [short_id(d) for d in diff_ids]
        for layer_id in ids:
            progress.layer(layer_id, "Preparing")
        for layer_id in ids[self.max_uploads:]:
            progress.layer(layer_id, "Waiting")
        with ThreadPoolExecutor(max_workers=self.max_uploads, thread_name_prefix="push") as pool:
            futures = [pool.submit(self._push_layer, session, ref, chain, diff_id, progress, cancel)
                       for chain, diff_id in zip(image.chain_ids, diff_ids)]
            try:
                layers = [f.result() for f in futures]
            except BaseException:
                cancel.set()
                raise
        config_bytes = self.images.content.read(image.id)
        if session.blob_size(image.id) is None:
            session.upload_blob(image.id, iter([config_bytes]), len(config_bytes))
        manifest = {"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                    "config": {"mediaType": mf.DOCKER_CONFIG, "size": len(config_bytes), "digest": image.id},
                    "layers": [layer.to_json() for layer in layers]}
        data = json.dumps(manifest, indent=3).encode()  # dockerd's MarshalIndent with three spaces
        session.put_manifest(ref.tag or "latest", mf.DOCKER_MANIFEST, data)
        return mf.sha256_digest(data), len(data)

    def _push_layer(self, session: Session, ref: Reference, chain: str, diff_id: str, progress: Progress,
                    cancel: threading.Event) -> mf.Descriptor:
        layer_id = short_id(diff_id)
        if cancel.is_set():
            raise DockyardError("push cancelled")
        target = ref.name
        # a docker schema 2 manifest can only name gzip layers
        sources = [s for s in self.index.sources(diff_id) if s.media_type in (mf.DOCKER_LAYER, mf.OCI_LAYER_GZIP)]
        same_registry = [s for s in sources if s.repository.split("/", 1)[0] == ref.domain]
        for src in sorted(same_registry, key=lambda s: s.repository != target):
            if src.repository == target or src.repository.split("/", 1)[1] == ref.path:
                size = session.blob_size(src.digest)
                if size is not None:
                    progress.layer(layer_id, "Layer already exists")
                    return mf.Descriptor(mf.DOCKER_LAYER, src.digest, size)
                continue
            from_path = src.repository.split("/", 1)[1]
            session.add_scope(f"repository:{from_path}:pull")
            if session.mount_blob(src.digest, from_path):
                progress.layer(layer_id, f"Mounted from {from_path}")
                self.index.add(diff_id, BlobSource(src.digest, src.size, mf.DOCKER_LAYER, target))
                return mf.Descriptor(mf.DOCKER_LAYER, src.digest, src.size)
        for src in sources:
            if src not in same_registry:
                size = session.blob_size(src.digest)
                if size is not None:
                    progress.layer(layer_id, "Layer already exists")
                    self.index.add(diff_id, BlobSource(src.digest, size, mf.DOCKER_LAYER, target))
                    return mf.Descriptor(mf.DOCKER_LAYER, src.digest, size)
        layers = self.images.layers
        total = int(layers.meta(chain).get("tar_size", 0))
        meter = progress.meter(layer_id, "Pushing", total)
        digest = hashlib.sha256()
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            for out in gzip_stream(layers.tar_stream(chain), meter.add):
                if cancel.is_set():
                    raise DockyardError("push cancelled")
                digest.update(out)
                sent += len(out)
                yield out

        blob_digest = session.upload_stream(body(), lambda: "sha256:" + digest.hexdigest())
        meter.finish()
        progress.layer(layer_id, "Pushed")
        self.index.add(diff_id, BlobSource(blob_digest, sent, mf.DOCKER_LAYER, target))
        return mf.Descriptor(mf.DOCKER_LAYER, blob_digest, sent)


def local_image_not_found(ref: Reference) -> NotFound:
    return NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
