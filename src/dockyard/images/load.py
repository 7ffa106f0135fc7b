"""Reading image archives: `docker save` tarballs (old and 25+ layouts) and OCI image layouts.

The archive is read as a stream, once. Members that look like layers are
unpacked as they pass (decompressed, hashed, extracted into build dirs);
JSON members are kept in memory. Only when the whole archive has been read
are the manifests resolved and every digest checked; then the layers are
committed and the images registered. Any failure before that discards
every build dir, so nothing half-loaded is ever visible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import IO, Any

from .. import errors
from ..util import host
from ..util import reference as refs
from ..util.archive import ForwardReader
from .layers import LayerStore, PendingLayer
from .streams import HashingReader, compression_of, corrupt_data_errors, decompressed

log = logging.getLogger("dockyard.images")

MAX_JSON_MEMBER = 64 * 1024 * 1024
# What one archive may make the daemon hold in memory: its small members together, and how many
# members it names (each costs a dict entry). A save of a thousand images needs a few MiB and
# a few thousand members.
MAX_HELD_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 100_000
EMPTY_TAR_HEAD = b"\0" * 512
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass
class ExistingLayer:
    """A layer member whose content the store already has (matched by diff ID)."""

    chain_id: str
    diff_id: str
    blob_digest: str


@dataclass
class LoadedImage:
    config: bytes
    diff_ids: list[str]
    layers: list[PendingLayer | ExistingLayer]
    tags: list[refs.Reference] = field(default_factory=list)


class _Chain:
    """Bytes already read, then the rest of a stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)

    def readable(self) -> bool:
        return True


class _Member:
    """A member's content read straight from the archive stream (no tarfile buffering in between)."""

    def __init__(self, stream: ForwardReader, offset: int, size: int) -> None:
        stream.seek(offset)
        self._stream = stream
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(n)
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True


def _looks_like_layer(head: bytes) -> bool:
    if compression_of(head) is not None:
        return True
    if len(head) >= 262 and head[257:262] == b"ustar":
        return True
    return head == EMPTY_TAR_HEAD


class ArchiveReader:
    """One pass over an image archive; then ``images()`` resolves what it held."""

    def __init__(self, layers: LayerStore) -> None:
        self.layers = layers
        self.files: dict[str, bytes] = {}  # small (JSON) members
        self.blobs: dict[str, PendingLayer | ExistingLayer] = {}  # layer members by name
        self.digests: dict[str, str] = {}  # member name -> sha256 of its bytes
        self.links: dict[str, str] = {}  # symlinked member -> target member
        self._held = 0  # bytes in self.files

    def read(self, stream: IO[bytes]) -> None:
        try:
            try:
                plain = ForwardReader(decompressed(stream))  # type: ignore[arg-type]
            except ValueError as e:
                raise errors.InvalidParameter(f"invalid tar archive: {e}") from None
            with tarfile.TarFile(fileobj=plain, mode="r") as tar:  # type: ignore[arg-type]
                for count, m in enumerate(tar):
                    if count >= MAX_MEMBERS:
                        raise errors.InvalidParameter(f"invalid archive: more than {MAX_MEMBERS} members")
                    tar.members.clear()  # tarfile keeps every header seen; one pass needs none of them
                    name = posixpath.normpath(m.name.lstrip("/"))
                    if m.issym():
                        self.links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
                    elif m.islnk():
                        self.links[name] = posixpath.normpath(m.linkname.lstrip("/"))
                    elif m.isreg():
                        src: IO[bytes] = tar.extractfile(m) if m.sparse is not None else \
                            _Member(plain, m.offset_data, m.size)  # type: ignore[assignment]
                        assert src is not None
                        self._member(name, m.size, src)
                while stream.read(1024 * 1024):
                    pass
        except (tarfile.TarError, OSError, *corrupt_data_errors()) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise errors.InvalidParameter(f"invalid tar archive: {e or 'unexpected end of data'}") from None

    def _member(self, name: str, size: int, src: IO[bytes]) -> None:
        head = src.read(512)
        if _looks_like_layer(head):
            known = self._known_layer(name)
            if known:
                reader = HashingReader(_Chain(head, src))
                reader.drain()
                if reader.digest != known[1]:
                    raise errors.InvalidParameter(f"invalid archive: {name} does not match its digest")
                self.blobs[name] = ExistingLayer(known[0], known[1], reader.digest)
            else:
                self.blobs[name] = self.layers.unpack(_Chain(head, src))  # type: ignore[arg-type]
            self.digests[name] = self.blobs[name].blob_digest
            return
        if size > MAX_JSON_MEMBER:
            raise errors.InvalidParameter(f"invalid archive: unexpected large member {name}")
        self._held += size
        if self._held > MAX_HELD_BYTES:
            raise errors.InvalidParameter(
                f"invalid archive: its metadata members exceed {MAX_HELD_BYTES >> 20} MiB together")
        data = head + src.read()
        if len(data) != size:
            raise errors.InvalidParameter("invalid tar archive: unexpected end of data")
        self.files[name] = data

    def _known_layer(self, name: str) -> tuple[str, str] | None:
        """``blobs/sha256/<hex>`` of an uncompressed layer we hold: no need to unpack it again."""
        if not name.startswith("blobs/sha256/") or not self.layers.snap.independent_layers:
            return None
        diff_id = "sha256:" + name[len("blobs/sha256/"):]
        cid = self.layers.find_diff(diff_id)
        return (cid, diff_id) if cid else None

    def discard(self) -> None:
        for blob in self.blobs.values():
            if isinstance(blob, PendingLayer):
                self.layers.discard(blob)
        self.blobs.clear()

    # -- resolving -------------------------------------------------------------------
    def _resolve(self, name: str) -> str:
        seen = 0
        name = posixpath.normpath(name.lstrip("/"))
        while name in self.links and seen < 16:
            name = self.links[name]
            seen += 1
        return name

    def _file(self, name: str) -> bytes:
        key = self._resolve(name)
        if key not in self.files:
            raise errors.InvalidParameter(f"invalid archive: {name} is missing")
        return self.files[key]

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self._file(name))
        except ValueError as e:
            raise errors.InvalidParameter(f"invalid archive: {name}: {e}") from None

    def _layer(self, name: str) -> PendingLayer | ExistingLayer:
        key = self._resolve(name)
        if key not in self.blobs:
            raise errors.InvalidParameter(f"invalid archive: layer {name} is missing")
        return self.blobs[key]

    def images(self) -> list[LoadedImage]:
        self._verify_blob_names()
        if "manifest.json" in self.files:
            return self._docker_images()
        if "index.json" in self.files:
            return self._oci_images()
        raise errors.InvalidParameter("invalid archive: it holds neither manifest.json nor index.json")

    def _verify_blob_names(self) -> None:
        """Content-addressed members must hold what their name says."""
        for name, data in self.files.items():
            if name.startswith("blobs/sha256/") and hashlib.sha256(data).hexdigest() != name[13:]:
                raise errors.InvalidParameter(f"invalid archive: {name} does not match its digest")
        for name, digest in self.digests.items():
            if name.startswith("blobs/sha256/") and digest[7:] != name[13:]:
                raise errors.InvalidParameter(f"invalid archive: {name} does not match its digest")

    def _docker_images(self) -> list[LoadedImage]:
        manifest = self._json("manifest.json")
        if not isinstance(manifest, list):
            raise errors.InvalidParameter("invalid archive: manifest.json is not a list")
        out = []
        for entry in manifest:
            config = self._file(entry["Config"])
            layers = [self._layer(p) for p in entry.get("Layers") or []]
            tags = [refs.parse(t) for t in entry.get("RepoTags") or []]
            out.append(self._image(config, layers, tags))
        return out

    def _blob_name(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        return f"blobs/{algo}/{hexpart}"

    def _oci_images(self) -> list[LoadedImage]:
        index = self._json("index.json")
        out: dict[str, LoadedImage] = {}
        for desc in self._manifests(index, 0):
            manifest = self._json(self._blob_name(desc["digest"]))
            config = self._file(self._blob_name(manifest["config"]["digest"]))
            layers = []
            for ld in manifest.get("layers") or []:
                name = self._blob_name(ld["digest"])
                blob = self._layer(name)
                if blob.blob_digest != ld["digest"]:
                    raise errors.InvalidParameter(f"invalid archive: layer {ld['digest']} does not match its digest")
                layers.append(blob)
            image = out.get(manifest["config"]["digest"]) or self._image(config, layers, [])
            ann = desc.get("annotations") or {}
            name = ann.get("io.containerd.image.name") or ""
            ref_name = ann.get("org.opencontainers.image.ref.name") or ""
            if not name and ("/" in ref_name or ":" in ref_name):
                name = ref_name
            if name:
                image.tags.append(refs.parse(name))
            out[manifest["config"]["digest"]] = image
        return list(out.values())

    def _manifests(self, index: dict[str, Any], depth: int) -> list[dict[str, Any]]:
        """The image manifests an index names (nested indexes followed; the host's platform picked)."""
        if depth > 8:
            raise errors.InvalidParameter("invalid archive: indexes nested too deep")
        found = []
        for desc in index.get("manifests") or []:
            if desc.get("mediaType") in INDEX_TYPES:
                nested = self._json(self._blob_name(desc["digest"]))
                picked = self._pick_platform(self._manifests(nested, depth + 1))
                for p in picked:
                    p = dict(p)
                    if desc.get("annotations"):
                        p["annotations"] = {**(p.get("annotations") or {}), **desc["annotations"]}
                    found.append(p)
            else:
                found.append(desc)
        return found

    @staticmethod
    def _pick_platform(descs: list[dict[str, Any]]) -> list[dict[str, Any]]:

        arch = host.go_arch()
        usable = [d for d in descs if (d.get("annotations") or {}).get("vnd.docker.reference.type")
                  != "attestation-manifest"]
        matching = [d for d in usable if (d.get("platform") or {}).get("architecture") == arch
                    and (d.get("platform") or {}).get("os", "linux") == "linux"]
        return matching[:1] or usable[:1]

    def _image(self, config: bytes, layers: list[PendingLayer | ExistingLayer],
               tags: list[refs.Reference]) -> LoadedImage:
        try:
            cfg = json.loads(config)
        except ValueError as e:
            raise errors.InvalidParameter(f"invalid archive: image config: {e}") from None
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise errors.InvalidParameter(
                f"invalid archive: the config names {len(diff_ids)} layers, the manifest {len(layers)}")
        for want, layer in zip(diff_ids, layers):
            if layer.diff_id != want:
                raise errors.InvalidParameter(
                    f"invalid diffID for layer: expected {want!r}, got {layer.diff_id!r}")
        return LoadedImage(config, diff_ids, layers, tags)

