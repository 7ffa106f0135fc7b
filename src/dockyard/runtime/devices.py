"""`--device` and `--device-cgroup-rule`: device nodes created in the container and the cgroup rules that
let it use them, as moby's oci.DevicesFromPath and AppendDevicePermissionsFromCgroupRules build them.

A host device (or every device below a host directory) becomes an entry of the OCI ``linux.devices``,
which runc creates in the container's /dev, and an allow rule of ``linux.resources.devices`` with the
permissions asked for. A directory is walked with a bound: `--device /` must not make the daemon walk
the host's whole filesystem.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from typing import Any

from .. import errors

CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")
PERMISSIONS = re.compile(r"[rwm]{1,3}")
# entries looked at below one `--device` directory (moby has no bound; /dev holds a few hundred)
MAX_WALK_ENTRIES = 10_000


def validate(host_config: dict[str, Any]) -> None:
    """The shapes dockerd accepts (400 naming the entry); the host paths are looked at only at start."""
    devices = host_config.get("Devices") or []
    if not isinstance(devices, list):
        raise errors.InvalidParameter("invalid Devices: expected a list")
    for dev in devices:
        if not isinstance(dev, dict) or not isinstance(dev.get("PathOnHost"), str) or not dev["PathOnHost"]:
            raise errors.InvalidParameter(f"invalid device mapping: {dev!r}: PathOnHost is required")
        inside = dev.get("PathInContainer") or dev["PathOnHost"]
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise errors.InvalidParameter(f"invalid device mapping: {inside!r}: the path in the container "
                                          f"must be absolute")
        perms = dev.get("CgroupPermissions") or "rwm"
        if not isinstance(perms, str) or not PERMISSIONS.fullmatch(perms) or len(set(perms)) != len(perms):
            raise errors.InvalidParameter(f"invalid device mode: {perms}")
    rules = host_config.get("DeviceCgroupRules") or []
    if not isinstance(rules, list):
        raise errors.InvalidParameter("invalid DeviceCgroupRules: expected a list")
    for rule in rules:
        cgroup_rule(rule)


def cgroup_rule(rule: Any) -> dict[str, Any]:
    """One `--device-cgroup-rule` (`c 1:3 rwm`, `*` for any number) as an OCI device cgroup entry."""
    m = CGROUP_RULE.fullmatch(rule) if isinstance(rule, str) else None
    if not m:
        raise errors.InvalidParameter(f"invalid device cgroup format '{rule}'")
    kind, major, minor, access = m.groups()
    out: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major != "*":
        out["major"] = int(major)
    if minor != "*":
        out["minor"] = int(minor)
    return out


def _node(path: str, inside: str, perms: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(OCI device, cgroup rule) for the device node ``path`` (symlinks not followed), None if not a device."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    device = {"path": inside, "type": kind, "major": major, "minor": minor, "fileMode": stat.S_IMODE(st.st_mode),
              "uid": st.st_uid, "gid": st.st_gid}
    return device, {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}


def _from_path(on_host: str, inside: str, perms: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
    node = _node(resolved, inside, perms)
    if node:
        return [node[0]], [node[1]]
    devs: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    if os.path.isdir(resolved):
        seen = 0
        for dirpath, dirnames, filenames in os.walk(resolved):
            seen += len(dirnames) + len(filenames)
            if seen > MAX_WALK_ENTRIES:
                raise errors.InvalidParameter(
                    f"error gathering device information while adding custom device \"{on_host}\": more than "
                    f"{MAX_WALK_ENTRIES} entries below it")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                child = _node(path, posixpath.join(inside, os.path.relpath(path, resolved)), perms)
                if child:
                    devs.append(child[0])
                    rules.append(child[1])
    if devs:
        return devs, rules
    reason = "no such file or directory" if not os.path.lexists(resolved) else "not a device node"
    raise errors.InvalidParameter(
        f"error gathering device information while adding custom device \"{on_host}\": {reason}")


def user_devices(host_config: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(OCI devices, device cgroup rules) the container's `Devices` and `DeviceCgroupRules` ask for."""
    validate(host_config)
    devs: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for dev in host_config.get("Devices") or []:
        d, r = _from_path(dev["PathOnHost"], dev.get("PathInContainer") or dev["PathOnHost"],
                          dev.get("CgroupPermissions") or "rwm")
        devs += d
        rules += r
    rules += [cgroup_rule(rule) for rule in host_config.get("DeviceCgroupRules") or []]
    return devs, rules


# (type, major, minor, path, mode) of the devices every container gets
DEFAULT_DEVICES = [("c", 1, 3, "/dev/null"), ("c", 1, 5, "/dev/zero"), ("c", 1, 7, "/dev/full"),
                   ("c", 1, 8, "/dev/random"), ("c", 1, 9, "/dev/urandom"), ("c", 5, 0, "/dev/tty")]
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
]


_SKIPPED_DEV_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def host_devices() -> list[dict[str, Any]]:
    """Every device node under the host's /dev, as dockerd gives a privileged container."""
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        if dirpath == "/dev":
            dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DEV_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            out.append({"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out
