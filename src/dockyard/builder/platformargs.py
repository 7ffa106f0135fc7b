"""The platform arguments BuildKit defines in the global scope of every Dockerfile.

``BUILDPLATFORM``/``BUILDOS``/``BUILDARCH``/``BUILDVARIANT`` name the daemon's
platform, ``TARGET*`` the platform asked for (``docker build --platform``) or
else the daemon's. As in BuildKit they are usable in ``FROM`` lines and
global-scope expansions without being declared, and a stage sees one only
after an ``ARG`` naming it; a ``--build-arg`` of the same name overrides it.
"""

from __future__ import annotations

import platform as _platform

NAMES = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
         "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")

_MACHINE = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
            "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", ""),
            "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


def native() -> tuple[str, str, str]:
    arch, variant = _MACHINE.get(_platform.machine(), (_platform.machine(), ""))
    return "linux", arch, variant


def _join(os_: str, arch: str, variant: str) -> str:
    return f"{os_}/{arch}" + (f"/{variant}" if variant else "")


def values(requested: str) -> dict[str, str]:
    """The eight arguments for a build asked for ``requested`` (``os/arch[/variant]``, or '' for native)."""
    build = native()
    if requested:
        parts = requested.lower().split("/")
        target = (parts[0], parts[1] if len(parts) > 1 else build[1], parts[2] if len(parts) > 2 else "")
    else:
        target = build
    return {
        "TARGETPLATFORM": _join(*target), "TARGETOS": target[0], "TARGETARCH": target[1],
        "TARGETVARIANT": target[2],
        "BUILDPLATFORM": _join(*build), "BUILDOS": build[0], "BUILDARCH": build[1], "BUILDVARIANT": build[2],
    }
