"""``HostConfig.SecurityOpt``: no-new-privileges, seccomp, apparmor, label and systempaths options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import errors
from . import lsm, seccomp


@dataclass
class SecurityOpts:
    """``HostConfig.SecurityOpt`` as dockerd's parseSecurityOpt reads it."""

    no_new_privileges: bool = False
    seccomp: str = ""  # "": the default profile; "unconfined"; else a custom profile's JSON text
    apparmor: str = ""
    unconfined_paths: bool = False  # systempaths=unconfined (the docker CLI sends empty MaskedPaths instead)


def parse(host_config: dict[str, Any]) -> SecurityOpts:
    """Parsed and checked: an option that cannot take effect here is a 400, never silently dropped."""
    out = SecurityOpts()
    opts = host_config.get("SecurityOpt") or []
    if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
        raise errors.InvalidParameter("invalid SecurityOpt: expected a list of strings")
    for opt in opts:
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "disable":  # dockerd's shorthand for label=disable
            continue
        sep = "=" if "=" in opt else ":"
        key, found, value = opt.partition(sep)
        if not found:
            raise errors.InvalidParameter(f"invalid --security-opt 1: {opt!r}")
        if key == "no-new-privileges":
            if value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise errors.InvalidParameter(f"invalid --security-opt 2: {opt!r}")
            out.no_new_privileges = value.lower() in ("1", "t", "true")
        elif key == "seccomp":
            out.seccomp = "" if value == "builtin" else value
            if out.seccomp not in ("", "unconfined"):
                seccomp.load(out.seccomp)
        elif key == "apparmor":
            lsm.validate_apparmor(value)
            out.apparmor = value
        elif key == "label":
            lsm.validate_label(value)
        elif key == "systempaths" and value == "unconfined":
            out.unconfined_paths = True
        else:
            raise errors.InvalidParameter(f"invalid --security-opt 2: {opt!r}")
    return out
