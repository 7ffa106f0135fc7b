"""Seccomp profiles in docker's format (``default.json``, `--security-opt seccomp=<profile.json>`) rendered
into the OCI ``linux.seccomp`` section for one container, as moby's profiles/seccomp does.

A profile's rules may be conditional: ``includes``/``excludes`` name architectures (libseccomp's
names), capabilities (of the container's bounding set) and a minimum kernel. Rendering keeps the rules
whose conditions hold and drops the conditions; ``archMap`` becomes the native architecture and its
sub-architectures. The CLI sends a profile file's content, so a custom profile arrives as JSON text.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .. import errors
from ..util import host

# GOARCH (image configs, platform.machine() mapped) -> libseccomp's name, as moby's goToNative
GO_TO_NATIVE = {"386": "x86", "amd64": "amd64", "arm": "arm", "arm64": "arm64", "loong64": "loongarch64",
                "mips64": "mips64", "mips64le": "mipsel64", "mipsle": "mipsel", "ppc": "ppc", "ppc64": "ppc64",
                "ppc64le": "ppc64le", "riscv64": "riscv64", "s390": "s390", "s390x": "s390x"}
NATIVE_TO_SECCOMP = {"x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM",
                     "arm64": "SCMP_ARCH_AARCH64", "loongarch64": "SCMP_ARCH_LOONGARCH64",
                     "mips64": "SCMP_ARCH_MIPS64", "mipsel64": "SCMP_ARCH_MIPSEL64", "mipsel": "SCMP_ARCH_MIPSEL",
                     "ppc": "SCMP_ARCH_PPC", "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
                     "riscv64": "SCMP_ARCH_RISCV64", "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X"}
# a custom profile is the client's: bounded before it is looked at
MAX_PROFILE_BYTES = 1 << 20
_RULE_KEYS = {"name", "names", "action", "args", "comment", "includes", "excludes", "errnoRet"}
# what runc knows: anything else would only fail later, at start, as a 500
ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
OPERATORS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ"}
_PASSED_KEYS = ("defaultAction", "defaultErrnoRet", "flags", "listenerPath", "listenerMetadata")


def _kernel() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _min_kernel(value: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)\.(\d+)", value)
    if not m:
        raise errors.InvalidParameter(f"invalid kernel version: {value!r}")
    return int(m.group(1)), int(m.group(2))


def load(text: str) -> dict[str, Any]:
    """A client's profile (JSON text), checked for shape; the 400s name what is wrong, as dockerd's."""
    if len(text) > MAX_PROFILE_BYTES:
        raise errors.InvalidParameter(f"Decoding seccomp profile failed: larger than {MAX_PROFILE_BYTES} bytes")
    try:
        profile = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise errors.InvalidParameter(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise errors.InvalidParameter("Decoding seccomp profile failed: the profile must be a JSON object")
    if profile.get("defaultAction") and profile["defaultAction"] not in ACTIONS:
        raise errors.InvalidParameter(
            f"Decoding seccomp profile failed: unknown default action {profile['defaultAction']!r}")
    syscalls = profile.get("syscalls") or []
    if not isinstance(syscalls, list) or not all(isinstance(r, dict) for r in syscalls):
        raise errors.InvalidParameter("Decoding seccomp profile failed: 'syscalls' must be a list of objects")
    if not isinstance(profile.get("architectures") or [], list) or \
            not all(isinstance(a, str) for a in profile.get("architectures") or []):
        raise errors.InvalidParameter("Decoding seccomp profile failed: 'architectures' must be a list of names")
    arch_map = profile.get("archMap") or []
    if not isinstance(arch_map, list) or not all(
            isinstance(e, dict) and isinstance(e.get("architecture"), str) and
            isinstance(e.get("subArchitectures") or [], list) for e in arch_map):
        raise errors.InvalidParameter("Decoding seccomp profile failed: bad 'archMap'")
    for rule in syscalls:
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise errors.InvalidParameter(
                f"Decoding seccomp profile failed: unknown field {sorted(unknown)[0]!r} in a syscall rule")
        names = rule.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or \
                not isinstance(rule.get("name", ""), str):
            raise errors.InvalidParameter("Decoding seccomp profile failed: syscall names must be strings")
        if rule.get("action") not in ACTIONS:
            raise errors.InvalidParameter(f"Decoding seccomp profile failed: unknown action {rule.get('action')!r}")
        for arg in rule.get("args") or []:
            if not isinstance(arg, dict) or arg.get("op") not in OPERATORS or \
                    not isinstance(arg.get("index"), int) or not 0 <= arg["index"] <= 5 or \
                    not isinstance(arg.get("value", 0), int) or not isinstance(arg.get("valueTwo", 0), int):
                raise errors.InvalidParameter(f"Decoding seccomp profile failed: bad syscall argument {arg!r}")
        for cond in ("includes", "excludes"):
            filt = rule.get(cond) or {}
            if not isinstance(filt, dict) or \
                    not all(isinstance(filt.get(k) or [], list) and all(isinstance(x, str) for x in filt.get(k) or [])
                            for k in ("caps", "arches")) or not isinstance(filt.get("minKernel") or "", str):
                raise errors.InvalidParameter(f"Decoding seccomp profile failed: bad '{cond}' filter")
    render(profile, set(), host.go_arch())  # the errors rendering finds are the client's too: now, at create
    return profile


def _holds(cond: dict[str, Any], capabilities: set[str], native: str, include: bool) -> bool:
    """Whether an ``includes`` (include=True) or ``excludes`` filter keeps the rule."""
    arches = cond.get("arches") or []
    caps = cond.get("caps") or []
    min_kernel = cond.get("minKernel")
    if include:
        return (not arches or native in arches) and all(c in capabilities for c in caps) and \
            (not min_kernel or _kernel() >= _min_kernel(str(min_kernel)))
    return not ((arches and native in arches) or any(c in capabilities for c in caps) or
                (min_kernel and _kernel() >= _min_kernel(str(min_kernel))))


def render(profile: dict[str, Any], capabilities: set[str], arch: str | None = None) -> dict[str, Any] | None:
    """The OCI ``linux.seccomp`` for a container holding ``capabilities`` (None: the profile disables seccomp)."""
    syscalls_in = profile.get("syscalls") or []
    if not profile.get("defaultAction") and not syscalls_in:
        return None  # as moby: no default action and no rules means no filter
    if profile.get("architectures") and profile.get("archMap"):
        raise errors.InvalidParameter("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                                      "use either 'architectures' or 'archMap'")
    native = GO_TO_NATIVE.get(arch or host.go_arch(), arch or host.go_arch())
    out: dict[str, Any] = {k: profile[k] for k in _PASSED_KEYS if profile.get(k) not in (None, "", [])}
    architectures = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == NATIVE_TO_SECCOMP.get(native):
            architectures = [entry["architecture"], *(entry.get("subArchitectures") or [])]
            break
    out["architectures"] = architectures
    rules = []
    for rule in syscalls_in:
        names = rule.get("names") or []
        if rule.get("name"):
            if names:
                raise errors.InvalidParameter("both 'name' and 'names' are specified in the seccomp profile, "
                                              "use either 'name' or 'names'")
            names = [rule["name"]]
        if rule.get("excludes") and not _holds(rule["excludes"], capabilities, native, include=False):
            continue
        if rule.get("includes") and not _holds(rule["includes"], capabilities, native, include=True):
            continue
        oci: dict[str, Any] = {"names": list(names), "action": rule["action"]}
        if rule.get("args"):
            oci["args"] = rule["args"]
        if rule.get("errnoRet") is not None:
            oci["errnoRet"] = rule["errnoRet"]
        rules.append(oci)
    out["syscalls"] = rules
    return out
