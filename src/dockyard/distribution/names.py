"""How the pull/push endpoints name what they act on, on top of util.reference."""

from __future__ import annotations

from ..errors import InvalidParameter
from ..util.reference import _DIGEST, _TAG, Reference, parse


def tag_or_digest(ref: Reference) -> str:
    return ref.digest or ref.tag or ""


def from_image_and_tag(image: str, tag: str) -> Reference:
    """``POST /images/create?fromImage=&tag=``: ``tag`` may hold a digest; no tag at all means every tag."""
    ref = parse(image, default_tag=False)
    if not tag:
        return ref
    if _DIGEST.fullmatch(tag):
        return Reference(ref.domain, ref.path, None, tag)
    if not _TAG.fullmatch(tag):
        raise InvalidParameter(f"invalid tag format: {tag}")
    return Reference(ref.domain, ref.path, tag, None)


def name_only(ref: Reference) -> Reference:
    return Reference(ref.domain, ref.path)
