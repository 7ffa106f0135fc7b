"""What a build is asked for (Options), what a stage carries between steps, and the names every step uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .. import errors
from .stages import Stage

Emit = Callable[[dict[str, Any]], None]

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
# args usable without an ARG line, and kept out of the image history
PREDEFINED_ARGS = PROXY_ARGS | {"SOURCE_DATE_EPOCH"}
DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what runc creates in a rootfs to mount over; dockerd keeps them in an init layer, never in a step's diff
MOUNTPOINTS = ("proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv")


# read views of images for COPY/ADD; a daemon killed mid-COPY leaves one, removed at the next start
VIEW_PREFIX = "build-"


class StepError(errors.InvalidParameter):
    """A step failed; ``code`` is the RUN command's exit status when it has one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Options:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    quiet: bool = False
    network: str = ""
    platform: str = ""
    cache_from: list[str] = field(default_factory=list)
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # (host, ip), from --add-host


@dataclass
class StageState:
    stage: Stage
    image_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str | None] = field(default_factory=dict)  # declared in this stage
    cmd_set: bool = False
    maintainer: str = ""


def full_config(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    for key in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
                "OnBuild", "StopSignal", "Healthcheck", "Shell"):
        out.setdefault(key, None)
    return {k: v for k, v in out.items() if not k.startswith("_")}
