"""Writing `docker save` archives in dockerd 25+'s layout, which older dockerd reads too.

Layout: ``blobs/sha256/<hex>`` holds the uncompressed layer tars (rebuilt
byte-exact from tar-split, so their digest is the diff ID), the configs and
the OCI manifests; ``index.json`` + ``oci-layout`` make it an OCI image layout;
``manifest.json`` and ``repositories`` are what every `docker load` reads.
"""

from __future__ import annotations

import json
import tarfile
from typing import Iterator

from ..util import reference as refs
from .content import ContentStore
from .layers import LayerStore
from .store import Image

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _info(name: str, size: int, mtime: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = mtime
    ti.type = kind
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return ti


def _header(ti: tarfile.TarInfo) -> bytes:
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _pad(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _member(name: str, data: bytes, mtime: int) -> bytes:
    return _header(_info(name, len(data), mtime)) + data + _pad(len(data))


def write_archive(layers: LayerStore, content: ContentStore,
                  images: list[tuple[Image, list[refs.Reference]]]) -> Iterator[bytes]:
    """The archive as a stream of chunks; layer content is streamed, never held whole."""
    mtime = 0
    written: set[str] = set()
    manifest_json = []
    index_manifests = []
    repositories: dict[str, dict[str, str]] = {}

    def blob(data: bytes) -> bytes:
        digest = _sha(data)
        if digest in written:
            return b""
        written.add(digest)
        return _member(f"blobs/sha256/{digest[7:]}", data, mtime)

    yield _header(_info("blobs", 0, mtime, tarfile.DIRTYPE)) + _header(_info("blobs/sha256", 0, mtime, tarfile.DIRTYPE))
    for image, tags in images:
        layer_descs = []
        layer_paths = []
        for cid in image.chain_ids:
            meta = layers.meta(cid)
            diff_id = meta["diff_id"]
            size = int(meta["tar_size"])
            if diff_id not in written:
                written.add(diff_id)
                yield _header(_info(f"blobs/sha256/{diff_id[7:]}", size, mtime))
                sent = 0
                for chunk in layers.tar_stream(cid):
                    sent += len(chunk)
                    yield chunk
                if sent != size:
                    raise OSError(f"layer {cid} rebuilt to {sent} bytes, expected {size}")
                yield _pad(size)
            layer_descs.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": size})
            layer_paths.append(f"blobs/sha256/{diff_id[7:]}")
        config = content.read(image.id)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": len(config)},
                    "layers": layer_descs}
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        yield blob(config) + blob(manifest_bytes)
        desc = {"mediaType": OCI_MANIFEST, "digest": _sha(manifest_bytes), "size": len(manifest_bytes)}
        if tags:
            for t in tags:
                index_manifests.append({**desc, "annotations": {"io.containerd.image.name": str(t),
                                                                "org.opencontainers.image.ref.name": t.tag}})
                repositories.setdefault(t.familiar_name, {})[t.tag or "latest"] = \
                    layer_paths[-1].rpartition("/")[2] if layer_paths else image.id[7:]
        else:
            index_manifests.append(desc)
        manifest_json.append({"Config": f"blobs/sha256/{image.id[7:]}",
                              "RepoTags": [t.familiar() for t in tags] or None,
                              "Layers": layer_paths})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_manifests}
    files = [("index.json", json.dumps(index, separators=(",", ":")).encode()),
             ("manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode()),
             ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    if repositories:
        files.append(("repositories", json.dumps(repositories, separators=(",", ":")).encode()))
    yield b"".join(_member(name, data, mtime) for name, data in files) + b"\0" * (2 * tarfile.BLOCKSIZE)
