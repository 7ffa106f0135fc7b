"""Facts about the host: what `docker info` and `docker version` report, and the one machine → GOARCH table."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess


def read_text(path: str) -> str:
    """A host file's text (/etc/hosts, /proc, cgroup files); "" when it cannot be read, bad bytes replaced."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


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


# uname's machine (and Debian's names for it) -> (GOARCH, variant): the names image platforms use
_MACHINES = {"x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
             "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armhf": ("arm", "v7"), "armel": ("arm", "v6"),
             "i386": ("386", ""), "i686": ("386", "")}


def go_arch(machine: str | None = None) -> str:
    """The Go-style architecture name (amd64, arm64) of ``machine`` (this host's by default)."""
    machine = (platform.machine() if machine is None else machine).lower()
    return _MACHINES.get(machine, (machine, ""))[0]


def arch_variant(machine: str | None = None) -> str:
    """The platform variant images name for ``machine`` (``v8`` for arm64), "" where there is none."""
    machine = (platform.machine() if machine is None else machine).lower()
    return _MACHINES.get(machine, (machine, ""))[1]


def architecture() -> str:
    return go_arch()


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
