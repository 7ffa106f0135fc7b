"""`--change` for import and commit: the Dockerfile instructions that only touch the image config."""

from __future__ import annotations

import json
import shlex
from typing import Any

from .. import errors

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL")


def _json_or_shell(arg: str) -> list[str]:
    """Exec form (a JSON array) or shell form, as the Dockerfile reads CMD/ENTRYPOINT."""
    arg = arg.strip()
    if arg.startswith("["):
        try:
            value = json.loads(arg)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", arg]


def _pairs(arg: str, what: str) -> list[tuple[str, str]]:
    """``k=v k2="v 2"`` or the legacy single ``k v`` form."""
    words = shlex.split(arg)
    if words and "=" not in words[0]:
        key, _, value = arg.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise errors.InvalidParameter(f"{what} names can not be blank" if not key else
                                          f"Syntax error - can't find = in {w!r}. Must be of the form: name=value")
        out.append((key, value))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return ``config`` (an image's container config) with ``changes`` applied."""
    for change in changes:
        change = change.strip()
        if not change:
            continue
        instr, _, arg = change.partition(" ")
        instr = instr.upper()
        if "=" in instr and not arg:
            # "ENV=x" style is not a Dockerfile instruction
            raise errors.InvalidParameter(f"{instr.split('=')[0]} is not a valid change command")
        if instr not in ALLOWED:
            raise errors.InvalidParameter(f"{instr.lower()} is not a valid change command")
        arg = arg.strip()
        if instr == "CMD":
            config["Cmd"] = _json_or_shell(arg)
        elif instr == "ENTRYPOINT":
            config["Entrypoint"] = _json_or_shell(arg)
        elif instr == "ENV":
            env = [e for e in config.get("Env") or []]
            for key, value in _pairs(arg, "ENV"):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif instr == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(arg, "LABEL"))
            config["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for p in arg.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for v in (_json_or_shell(arg) if arg.startswith("[") else arg.split()):
                vols[v] = {}
            config["Volumes"] = vols
        elif instr == "USER":
            config["User"] = arg
        elif instr == "WORKDIR":
            config["WorkingDir"] = arg
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = arg
        elif instr == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [arg]
    return config
