"""Image references as docker spells them (distribution/reference's grammar and normalisation).

``busybox`` is ``docker.io/library/busybox:latest``; ``localhost:5000/x:t`` keeps
its registry; ``name@sha256:...`` pins a digest. Stored references are the full
normalised form; clients are shown the familiar one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import errors

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

# distribution/reference's grammar: whole strings (fullmatch, as "$" passes a trailing newline) of ASCII
# (Python's \w is Unicode unless told otherwise)
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
                     r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_HEX64 = re.compile(r"[a-f0-9]{64}")


_LOWERCASE = re.compile(r"repository name \(.*\) must be lowercase", re.DOTALL)


def worded_before_1_44(message: str) -> str:
    """``message`` as dockerd before 25.0 said it: its reference parser did not name the repository."""
    return _LOWERCASE.sub("repository name must be lowercase", message)


def invalid(msg: str = "invalid reference format") -> errors.InvalidParameter:
    return errors.InvalidParameter(msg)


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len(OFFICIAL_PREFIX):] if self.path.startswith(OFFICIAL_PREFIX) else self.path
        return self.name

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> str:
        return self.familiar_name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, None, digest)


def parse(ref: str, default_tag: bool = True) -> Reference:
    """Parse and normalise; ``default_tag`` adds ``:latest`` when neither tag nor digest is given."""
    if not ref:
        raise invalid()
    remainder, digest = ref, None
    if "@" in ref:
        remainder, _, digest = ref.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise invalid()
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise invalid()
    if not remainder:
        raise invalid()
    first, sep, rest = remainder.partition("/")
    # distribution/reference: a first component with '.', ':', or uppercase, or "localhost", is a registry
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _DOMAIN.fullmatch(domain):
            raise invalid()
    else:
        domain, path = DEFAULT_DOMAIN, remainder
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if path != path.lower():
        text = f"invalid reference format: repository name ({path}) must be lowercase"
        raise errors.legacy(invalid(text), worded_before_1_44(text))
    if _HEX64.fullmatch(remainder):
        raise invalid(f"invalid repository name ({remainder}), cannot specify 64-byte hexadecimal strings")
    if not all(_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise invalid()
    if len(domain) + 1 + len(path) > 255:
        raise invalid("invalid reference format: repository name must not be more than 255 characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def parse_repo_tag(repo: str, tag: str | None) -> Reference:
    """``docker tag`` / import's ``repo`` + ``tag`` parameters (repo may carry the tag itself)."""
    ref = parse(repo, default_tag=False)
    if ref.digest:
        raise invalid("refusing to create a tag with a digest reference")
    if tag:
        if not _TAG.fullmatch(tag):
            raise invalid("invalid tag format")
        ref = ref.with_tag(tag)
    elif ref.tag is None:
        ref = ref.with_tag(DEFAULT_TAG)
    return ref
