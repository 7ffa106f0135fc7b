"""The cgroup driver (``--exec-opt native.cgroupdriver=cgroupfs|systemd``): who makes containers' cgroups.

cgroupfs (the default): runc writes the cgroup tree itself, under ``/dockyard/<id>``.
systemd: runc asks systemd over D-Bus (``runc --systemd-cgroup``) for a transient
scope ``dockyard-<id>.scope`` in a slice (``system.slice`` unless the container's
``--cgroup-parent`` names another), the cgroupsPath being ``slice:prefix:name`` as
runc reads it; systemd then owns the tree and does not fight the daemon over it.
That needs systemd as PID 1, so the driver is refused elsewhere at start, where
runc would fail on every container.

One driver per daemon process, as dockerd has: chosen once at start with :func:`use`
and read by the spec builder and every runc invocation.
"""

from __future__ import annotations

import os

from .. import errors

CGROUPFS = "cgroupfs"
SYSTEMD = "systemd"
DRIVERS = (CGROUPFS, SYSTEMD)
DEFAULT_SLICE = "system.slice"
SCOPE_PREFIX = "dockyard"

_driver = CGROUPFS


def from_exec_opts(opts: list[str]) -> str:
    """The driver ``--exec-opt``/``exec-opts`` choose (cgroupfs if none); ValueError names a bad option."""
    driver = CGROUPFS
    for opt in opts:
        key, sep, value = opt.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:
            raise ValueError(f"invalid exec-opt {opt!r}: expected key=value")
        if key != "native.cgroupdriver":
            raise ValueError(f"unknown exec-opt {key!r} (supported: native.cgroupdriver)")
        if value not in DRIVERS:
            raise ValueError(f"native.cgroupdriver option {value!r} not supported (supported: {', '.join(DRIVERS)})")
        driver = value
    if driver == SYSTEMD and not systemd_booted():
        raise ValueError("native.cgroupdriver=systemd needs systemd running as init (PID 1), and this host "
                         "has none (/run/systemd/system is missing): runc could not create any container's "
                         "scope; use native.cgroupdriver=cgroupfs")
    return driver


def systemd_booted() -> bool:
    """sd_booted(3): the test systemd's own tools use."""
    return os.path.isdir("/run/systemd/system")


def use(driver: str) -> None:
    global _driver
    if driver not in DRIVERS:
        raise ValueError(f"unknown cgroup driver {driver!r}")
    _driver = driver


def current() -> str:
    return _driver


def runc_args() -> list[str]:
    """runc's global flags for the driver (before the command, on every call: create, update, exec, kill)."""
    return ["--systemd-cgroup"] if _driver == SYSTEMD else []


def systemd_cgroups_path(container_id: str, parent: str) -> str:
    """runc's ``slice:prefix:name`` for a container; ``parent`` (``--cgroup-parent``) must be a slice."""
    slice_ = parent or DEFAULT_SLICE
    if len(slice_) <= len(".slice") or not slice_.endswith(".slice") or any(ch in slice_ for ch in "/:") \
            or any(ch.isspace() for ch in slice_):
        raise errors.InvalidParameter('cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"')
    return f"{slice_}:{SCOPE_PREFIX}:{container_id}"
