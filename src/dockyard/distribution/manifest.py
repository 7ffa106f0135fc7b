"""Manifest formats (Docker schema 2, manifest list, OCI manifest and index) and platform choice."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameter, NotFound
from ..util import host

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
FOREIGN_LAYERS = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")

# What we ask for, most wanted first; schema 1 only so that we can say clearly that it is refused.
ACCEPT = [DOCKER_LIST, OCI_INDEX, DOCKER_MANIFEST, OCI_MANIFEST, *SCHEMA1]
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)

SCHEMA1_REFUSED = (
    "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has "
    "been removed. Suggest the author of {ref} to upgrade the image to the OCI Format or Docker Image "
    "manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, raw: Any) -> "Descriptor":
        if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str):
            raise ValueError("descriptor without a digest")
        size = raw.get("size", -1)
        if not isinstance(size, int):
            raise ValueError("descriptor size is not a number")
        return cls(str(raw.get("mediaType", "")), raw["digest"], size, dict(raw.get("platform") or {}),
                   tuple(raw.get("urls") or ()))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass
class Index:
    media_type: str
    manifests: list[Descriptor]


def parse(data: bytes, content_type: str, ref: str) -> ImageManifest | Index:
    """Parse a manifest body; ``ref`` names the image in errors."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise InvalidParameter(f"error parsing manifest for {ref}: manifest is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InvalidParameter(f"error parsing manifest for {ref}: manifest is not a JSON object")
    media_type = str(doc.get("mediaType") or "")
    if content_type in SCHEMA1 or media_type in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InvalidParameter(SCHEMA1_REFUSED.format(ref=ref))
    if not media_type and content_type in INDEX_TYPES + IMAGE_TYPES:
        media_type = content_type
    if not media_type:  # OCI allows omitting it; the shape tells
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    try:
        if media_type in INDEX_TYPES:
            return Index(media_type, [Descriptor.from_json(m) for m in doc.get("manifests") or []])
        if media_type in IMAGE_TYPES:
            layers = doc.get("layers")
            if not isinstance(layers, list):
                raise ValueError("no layers list")
            return ImageManifest(media_type, Descriptor.from_json(doc.get("config")),
                                 [Descriptor.from_json(layer) for layer in layers])
    except ValueError as e:
        raise InvalidParameter(f"error parsing manifest for {ref}: {e}") from None
    raise InvalidParameter(f"unsupported manifest media type {media_type!r} for {ref}")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    # arm's variant stays "" as before: only arm64's v8 is implied by the machine for matching
    arch = host.go_arch()
    return Platform("linux", arch, "v8" if arch == "arm64" else "")


# containerd's platforms database (what dockerd 20.10 parses --platform with)
_KNOWN_OS = frozenset("aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
                      "solaris windows zos".split())
_KNOWN_ARCH = frozenset("386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 "
                        "mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm".split())
_COMPONENT = re.compile(r"[A-Za-z0-9_-]+")


def parse_platform(spec: str | None) -> Platform | None:
    """``os[/arch[/variant]]`` as given to ``--platform``, refused in containerd's words; None when not given."""
    if not spec:
        return None
    parts = spec.split("/")
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            raise InvalidParameter(f"{_quote(part)} is an invalid component of {_quote(spec)}: platform specifier "
                                   f'component must match "^[A-Za-z0-9_-]+$": invalid argument')
    parts = [p.lower() for p in parts]
    if len(parts) > 3:
        raise InvalidParameter(f"{_quote(spec)}: cannot parse platform specifier: invalid argument")
    if len(parts) == 1:
        os_ = "darwin" if parts[0] == "macos" else parts[0]
        if os_ in _KNOWN_OS:
            return Platform(os_, host_platform().architecture)
        arch = host.go_arch(parts[0])
        if arch in _KNOWN_ARCH:
            return Platform("linux", arch)
        raise InvalidParameter(f"{_quote(spec)}: unknown operating system or architecture: invalid argument")
    arch = host.go_arch(parts[1])
    variant = parts[2] if len(parts) == 3 else ""
    if arch == "arm64" and variant == "v8":
        variant = ""  # arm64 means v8 unless it says otherwise
    return Platform("darwin" if parts[0] == "macos" else parts[0], arch, variant)


def _quote(s: str) -> str:
    """Go's %q for the printable ASCII a platform holds."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _matches(want: Platform, p: dict[str, Any]) -> bool:
    if str(p.get("os", "")).lower() != want.os:
        return False
    arch = host.go_arch(str(p.get("architecture", "")).lower())
    if arch != want.architecture:
        return False
    variant = str(p.get("variant", "")).lower()
    if arch == "arm64" and variant == "v8":
        variant = ""
    return not want.variant or variant == want.variant


def select(index: Index, want: Platform) -> Descriptor:
    """The entry of a manifest list / OCI index for ``want`` (exact variant preferred)."""
    candidates = [m for m in index.manifests if m.media_type in IMAGE_TYPES + INDEX_TYPES or not m.media_type]
    exact = [m for m in candidates if _matches(want, m.platform)]
    if not exact:
        raise NotFound(f"no matching manifest for {want} in the manifest list entries")
    if not want.variant:
        # prefer the plain entry over variants (amd64 over amd64/v3, arm64 over arm64/v9)
        exact.sort(key=lambda m: bool(str(m.platform.get("variant", "")).strip().lower() not in ("", "v8")))
    return exact[0]


def config_platform(config: dict[str, Any]) -> Platform:
    return Platform(str(config.get("os", "")), str(config.get("architecture", "")), str(config.get("variant", "")))


def check_config_platform(config: dict[str, Any], want: Platform, ref: str) -> None:
    if not _matches(want, {"os": config.get("os", ""), "architecture": config.get("architecture", ""),
                           "variant": config.get("variant", "")}):
        raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                       f"wanted {want}, actual: {config_platform(config)}")
