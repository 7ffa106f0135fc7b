"""The mounts of a container's OCI spec, and the init binary (docker-init/tini) bound into it."""

from __future__ import annotations

import os
from typing import Any

INIT_BINARIES = ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/bin/tini")
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"


def oci_mounts(host_config: dict[str, Any], shm: int, resolv_conf: str, hostname: str, hosts: str,
               init_binary: str | None, extra_mounts: list[dict[str, Any]],
               shm_source: str | None = None) -> list[dict[str, Any]]:
    """The spec's mounts: the kernel filesystems, the network files, tmpfs, volumes and binds, the init.
    ``shm_source``: a daemon-side tmpfs bound at /dev/shm (shared IPC) instead of one of the container's own."""
    privileged = bool(host_config.get("Privileged"))
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "bind", "source": shm_source,
         "options": ["rbind", "nosuid", "noexec", "nodev"]} if shm_source else
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
    ]
    for dest, path in (("/etc/resolv.conf", resolv_conf), ("/etc/hostname", hostname), ("/etc/hosts", hosts)):
        if path:
            mounts.append({"destination": dest, "type": "bind", "source": path, "options": ["rbind", "rprivate"]})
    for dest, opts in (host_config.get("Tmpfs") or {}).items():
        options = ["nosuid", "nodev", "noexec"]
        for opt in filter(None, (opts or "").split(",")):
            if opt in ("exec", "suid", "dev"):
                options = [o for o in options if o != "no" + opt]
            options.append(opt)
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
    mounts += extra_mounts
    if init_binary:
        mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": init_binary,
                       "options": ["bind", "ro"]})
    return mounts


def init_binary() -> str | None:
    for path in INIT_BINARIES:
        if os.path.exists(path):
            return os.path.realpath(path)
    return None
