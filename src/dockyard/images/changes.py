"""`--change` for import and commit: the Dockerfile instructions that only touch the image config.

As dockerd 20.10's BuildFromConfig: each change is read as a Dockerfile line, only the commit commands
are allowed, and the words of ENV, LABEL, EXPOSE, USER, WORKDIR and VOLUME are expanded against the
config's own Env (``ENV PATH=$PATH:/x``), as a build step would expand them.
"""

from __future__ import annotations

import posixpath
from typing import Any

from .. import errors
from ..dockerfile.parser import INSTRUCTIONS, Node, ParseError, flag, parse
from ..dockerfile.shell import Lexer

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR")
ONBUILD_REFUSED = ("FROM", "MAINTAINER")
PROTOCOLS = ("tcp", "udp", "sctp")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                   "h": 3_600_000_000_000}


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return ``config`` (an image's container config) with ``changes`` applied."""
    nodes = [_node(change) for change in changes if change.strip()]
    apply = _Apply(config)
    for node in nodes:
        getattr(apply, "_" + node.cmd)(node)
    return config


def _node(change: str) -> Node:
    word = change.strip().split(None, 1)[0]
    if "=" in word or word.lower() not in INSTRUCTIONS or word.upper() not in ALLOWED:
        raise errors.InvalidParameter(f"{word.split('=')[0].lower()} is not a valid change command")
    try:
        return parse(change.strip()).nodes[0]
    except ParseError as e:
        raise errors.InvalidParameter(str(e).split(": ", 1)[-1]) from None


class _Apply:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.cmd_set = False

    def _lexer(self) -> Lexer:
        env = dict(e.partition("=")[::2] for e in self.config.get("Env") or [])
        return Lexer(env)

    def _words(self, node: Node, what: str, at_least: int = 1) -> list[str]:
        words = self._lexer().words(node.rest)
        if len(words) < at_least:
            raise errors.InvalidParameter(f"{what} requires at least one argument")
        return words

    def _one(self, node: Node, what: str) -> str:
        words = self._lexer().words(node.rest)
        if len(words) != 1:
            raise errors.InvalidParameter(f"{what} requires exactly one argument")
        return words[0]

    def _pairs(self, node: Node, what: str) -> list[tuple[str, str]]:
        lexer = self._lexer()
        words = self._words(node, what)
        if "=" not in words[0]:
            key, _, value = node.rest.strip().partition(" ")
            if not value.strip():
                raise errors.InvalidParameter(f"{what} must have two arguments")
            return [(lexer.word(key), lexer.word(value.strip()))]
        out = []
        for w in words:
            key, sep, value = w.partition("=")
            if not sep or not key:
                raise errors.InvalidParameter(f"{what} names can not be blank" if sep else
                                              f"Syntax error - can't find = in \"{w}\". Must be of the form: "
                                              f"name=value")
            out.append((key, value))
        return out

    def _exec_or_shell(self, node: Node) -> list[str]:
        args = node.json_args()
        return args if args is not None else ["/bin/sh", "-c", node.rest]

    def _cmd(self, node: Node) -> None:
        self.config["Cmd"] = self._exec_or_shell(node)
        self.cmd_set = True

    def _entrypoint(self, node: Node) -> None:
        self.config["Entrypoint"] = self._exec_or_shell(node)
        if not self.cmd_set:
            self.config["Cmd"] = None  # as a Dockerfile's ENTRYPOINT: the CMD of before no longer applies

    def _env(self, node: Node) -> None:
        env = list(self.config.get("Env") or [])
        for key, value in self._pairs(node, "ENV"):
            keys = [e.partition("=")[0] for e in env]
            if key in keys:  # replaced where it stands, as dockerd's ENV does
                env[keys.index(key)] = f"{key}={value}"
            else:
                env.append(f"{key}={value}")
        self.config["Env"] = env

    def _label(self, node: Node) -> None:
        self.config["Labels"] = {**(self.config.get("Labels") or {}), **dict(self._pairs(node, "LABEL"))}

    def _expose(self, node: Node) -> None:
        ports = dict(self.config.get("ExposedPorts") or {})
        for word in self._words(node, "EXPOSE"):
            port, _, proto = word.partition("/")
            proto = proto.lower() or "tcp"
            if proto not in PROTOCOLS:
                raise errors.InvalidParameter(f"Invalid proto: {proto}")
            first, _, last = port.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise errors.InvalidParameter(f"Invalid containerPort: {port}")
            for number in range(int(first), int(last or first) + 1):  # a range exposes each port
                ports[f"{number}/{proto}"] = {}
        self.config["ExposedPorts"] = ports

    def _volume(self, node: Node) -> None:
        listed = node.json_args()
        lexer = self._lexer()
        paths = [lexer.word(v) for v in listed] if listed is not None else self._words(node, "VOLUME")
        volumes = dict(self.config.get("Volumes") or {})
        for path in paths:
            if not path.strip():
                raise errors.InvalidParameter("VOLUME specified can not be an empty string")
            volumes[path] = {}
        self.config["Volumes"] = volumes

    def _user(self, node: Node) -> None:
        self.config["User"] = self._one(node, "USER")

    def _workdir(self, node: Node) -> None:
        path = self._one(node, "WORKDIR")
        if not path.startswith("/"):
            path = posixpath.join(self.config.get("WorkingDir") or "/", path)
        self.config["WorkingDir"] = posixpath.normpath(path)

    def _onbuild(self, node: Node) -> None:
        trigger = node.rest.strip().partition(" ")[0].upper()
        if not trigger:
            raise errors.InvalidParameter("ONBUILD requires at least one argument")
        if trigger == "ONBUILD":
            raise errors.InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ONBUILD_REFUSED:
            raise errors.InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
        # the trigger is kept as written (dockerd does not normalise its case)
        self.config["OnBuild"] = list(self.config.get("OnBuild") or []) + [node.rest.strip()]

    def _healthcheck(self, node: Node) -> None:
        word, _, rest = node.rest.strip().partition(" ")
        kind = word.upper()
        if kind == "NONE":
            if rest.strip() or node.flags:
                raise errors.InvalidParameter("HEALTHCHECK NONE takes no arguments")
            self.config["Healthcheck"] = {"Test": ["NONE"]}
            return
        if kind != "CMD":
            raise errors.InvalidParameter(f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
        if not rest.strip():
            raise errors.InvalidParameter("Missing command after HEALTHCHECK CMD")
        args = Node("cmd", rest, rest.strip()).json_args()
        check: dict[str, Any] = {"Test": ["CMD", *args] if args is not None else ["CMD-SHELL", rest.strip()]}
        for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod")):
            value = flag(node, name)
            if value:
                check[key] = _duration_ns(value, name)
        retries = flag(node, "retries")
        if retries:
            if not retries.lstrip("-").isdigit():
                raise errors.InvalidParameter(f"strconv.ParseInt: parsing \"{retries}\": invalid syntax")
            if int(retries) < 1:
                raise errors.InvalidParameter("--retries must be at least 1")
            check["Retries"] = int(retries)
        self.config["Healthcheck"] = check


def _duration_ns(text: str, name: str) -> int:
    """Go's time.ParseDuration; dockerd's HEALTHCHECK refuses a non-zero value under 1ms."""
    total, rest = 0.0, text
    while rest:
        number = len(rest) - len(rest.lstrip("0123456789."))
        unit = next((u for u in sorted(_DURATION_UNITS, key=len, reverse=True) if rest[number:].startswith(u)), "")
        if not number or not unit:
            raise errors.InvalidParameter(f"time: invalid duration \"{text}\"")
        total += float(rest[:number]) * _DURATION_UNITS[unit]
        rest = rest[number + len(unit):]
    if 0 < total < 1_000_000:
        raise errors.InvalidParameter(f"Interval \"{name}\" cannot be less than 1ms")
    return int(total)
