"""`--security-opt apparmor=` and `label=`: applied where the host has the LSM, refused where it has not.

dockerd silently ignores both on a host without AppArmor / SELinux; dockyard refuses a profile or label
it cannot apply (400) so that a container never runs believing it is confined. SELinux labels are not
implemented at all (refused on an SELinux host too). `apparmor=unconfined`
and `label=disable` ask for no confinement and are always accepted. With AppArmor, a named profile is
put in the OCI spec (runc applies it; a profile the kernel has not loaded fails the start), and a
container that names none gets `docker-default` if the host has loaded a profile of that name:
dockyard does not write or load one itself.
"""

from __future__ import annotations

import os
import re

from .. import errors

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
APPARMOR_PROFILES = "/sys/kernel/security/apparmor/profiles"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"
DEFAULT_APPARMOR_PROFILE = "docker-default"
UNCONFINED = "unconfined"
# go-selinux's InitLabels: `disable`, `nested`, or one of these keys, a ':' and a value
LABEL = re.compile(r"(disable|nested|(user|role|type|level|filetype):.+)")


def apparmor_enabled() -> bool:
    try:
        with open(APPARMOR_ENABLED, encoding="ascii") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists(SELINUX_ENFORCE)


def _apparmor_loaded(name: str) -> bool:
    try:
        with open(APPARMOR_PROFILES, encoding="utf-8", errors="replace") as f:
            return any(line.rsplit(" (", 1)[0] == name for line in f)
    except OSError:
        return False


def validate_apparmor(profile: str) -> None:
    if profile != UNCONFINED and not apparmor_enabled():
        raise errors.InvalidParameter(f'AppArmor is not enabled on this host: cannot apply profile "{profile}"')
    if not profile:
        raise errors.InvalidParameter("invalid --security-opt: apparmor= needs a profile name")


def validate_label(value: str) -> None:
    if not LABEL.fullmatch(value):
        raise errors.InvalidParameter(
            f"bad label option {value!r}, valid options 'disable' or 'user, role, level, type, filetype' "
            f"followed by ':' and a value")
    if value == "disable":
        return
    if not selinux_enabled():
        raise errors.InvalidParameter(f'SELinux is not enabled on this host: cannot apply label "{value}"')
    raise errors.InvalidParameter(f'dockyard does not apply SELinux labels: cannot apply label "{value}"')


def apparmor_profile(requested: str, privileged: bool) -> str:
    """The OCI ``process.apparmorProfile`` (empty: none), as dockerd's WithApparmor on a host that has it."""
    if not apparmor_enabled():
        return ""
    if requested:
        return requested
    if privileged:
        return UNCONFINED
    return DEFAULT_APPARMOR_PROFILE if _apparmor_loaded(DEFAULT_APPARMOR_PROFILE) else ""
