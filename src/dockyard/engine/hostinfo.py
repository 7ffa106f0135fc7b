"""Facts about the host that `docker info` and `docker version` report."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess


def kernel_version() -> str:
    return os.uname().release


def operating_system() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def os_version() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VERSION_ID="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def architecture() -> str:
    """The Go-style architecture name (amd64, arm64) that image platforms use."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def hostname() -> str:
    return socket.gethostname()


def mem_total() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


@functools.lru_cache(maxsize=8)
def runtime_version(path: str) -> tuple[str, str]:
    """(version, commit) of an OCI runtime binary, read once per daemon."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "", ""
    version = commit = ""
    for line in out.splitlines():
        if " version " in line and not version:
            version = line.split(" version ", 1)[1].strip()
        elif line.startswith("commit:"):
            commit = line.split(":", 1)[1].strip()
    return version, commit
