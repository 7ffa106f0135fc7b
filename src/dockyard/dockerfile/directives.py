"""The parser directives the Dockerfile frontend reads besides ``# escape=``: ``# syntax=`` and ``# check=``.

``syntax`` names the frontend image BuildKit would run. dockyard's builder is
itself the ``docker/dockerfile:1`` frontend, so every reference to that image
(any 1.x tag, ``-labs``, ``latest``, with or without ``docker.io/`` and a
digest) is read as "this builder" and nothing is fetched; any other image is a
frontend we cannot run, and building it with our syntax would silently build
something else, so it is refused.

``check`` configures BuildKit's build checks (lint rules). dockyard runs none of
those rules, so ``skip=`` has nothing to skip and ``error=true`` nothing to
fail on; the directive is parsed (a malformed one is an error, as BuildKit
words it) and kept on the Dockerfile, and otherwise has no effect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import errors

_FRONTEND = re.compile(
    r"^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?docker/dockerfile(?:-upstream)?"
    r"(?::(?P<tag>[A-Za-z0-9._-]+))?(?:@sha256:[0-9a-f]{64})?$")
_TAG = re.compile(r"^(?:latest|labs|1(?:\.\d+){0,2}(?:-labs)?)$")


@dataclass
class Checks:
    skip: list[str] = field(default_factory=list)  # rule names, or ["all"]
    error: bool = False


def check_syntax(value: str, line: int) -> None:
    """Accept a ``# syntax=`` naming the docker/dockerfile:1 frontend; refuse any other frontend image."""
    m = _FRONTEND.match(value.strip())
    tag = (m.group("tag") if m else None) or "latest"
    if m is None or not _TAG.match(tag):
        raise errors.InvalidParameter(
            f"dockerfile parse error line {line}: unsupported syntax image {value.strip()!r}: this builder "
            f"implements the docker/dockerfile:1 frontend itself and runs no frontend images; use "
            f"'# syntax=docker/dockerfile:1' or drop the directive")


def parse_checks(value: str, line: int) -> Checks:
    """``skip=RuleA,RuleB;error=true`` as BuildKit's frontend parses it."""
    out = Checks()
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, val = part.partition("=")
        key, val = key.strip().lower(), val.strip()
        if not sep:
            raise errors.InvalidParameter(f"dockerfile parse error line {line}: invalid check directive "
                                          f"{value!r}: expected key=value, got {part!r}")
        if key == "skip":
            out.skip = [r.strip() for r in val.split(",") if r.strip()]
        elif key == "error":
            if val.lower() not in ("true", "false"):
                raise errors.InvalidParameter(f"dockerfile parse error line {line}: invalid check directive: "
                                              f"error must be true or false, not {val!r}")
            out.error = val.lower() == "true"
        else:
            raise errors.InvalidParameter(f"dockerfile parse error line {line}: invalid check directive: "
                                          f"unknown key {key!r} (expected skip or error)")
    return out
