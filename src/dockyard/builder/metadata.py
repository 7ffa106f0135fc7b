"""The metadata instructions (ENV, LABEL, ARG, CMD, ENTRYPOINT, EXPOSE, VOLUME, USER, STOPSIGNAL, MAINTAINER,
SHELL, ONBUILD, HEALTHCHECK): each changes only the image config and commits an empty-layer step.

A part of ``Builder`` (builder.py): the methods use its state and its ``_meta_step``/``_lexer``.
"""

from __future__ import annotations

import json
from typing import Any

from ..dockerfile.parser import Node, ParseError, flag
from .options import DEFAULT_SHELL, StageState, StepError

class MetadataSteps:
    def _pairs(self, state: StageState, node: Node, what: str) -> list[tuple[str, str]]:
        lexer = self._lexer(state)
        words = lexer.words(node.rest)
        if words and "=" not in words[0]:
            key, _, value = node.rest.strip().partition(" ")
            if not value.strip():
                raise ParseError(node.line, f"{what} must have two arguments")
            return [(lexer.word(key), lexer.word(value.strip()))]
        out = []
        for w in words:
            k, sep, v = w.partition("=")
            if not sep or not k:
                raise ParseError(node.line, f"Syntax error - can't find = in \"{w}\". Must be of the form: "
                                            f"name=value")
            out.append((k, v))
        return out

    def _i_env(self, state: StageState, node: Node) -> None:
        pairs = self._pairs(state, node, "ENV")
        env = list(state.config.get("Env") or [])
        for k, v in pairs:
            env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
        state.config["Env"] = env
        self._meta_step(state, "ENV " + " ".join(f"{k}={v}" for k, v in pairs))

    def _i_label(self, state: StageState, node: Node) -> None:
        pairs = self._pairs(state, node, "LABEL")
        labels = dict(state.config.get("Labels") or {})
        labels.update(pairs)
        state.config["Labels"] = labels
        self._meta_step(state, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))

    def _i_arg(self, state: StageState, node: Node) -> None:
        lexer = self._lexer(state)
        shown = []
        for w in lexer.words(node.rest):
            name, sep, default = w.partition("=")
            if not name:
                raise ParseError(node.line, "ARG names can not be blank")
            self.used_args.add(name)
            if self.opts.build_args.get(name) is not None:
                value: str | None = self.opts.build_args[name]
            elif sep:
                value = default
            else:
                value = self.meta_args.get(name)
            state.args[name] = value
            shown.append(w)
        self._meta_step(state, "ARG " + " ".join(shown))

    def _exec_or_shell(self, state: StageState, node: Node) -> list[str]:
        args = node.json_args()
        if args is not None:
            return args
        return [*(state.config.get("Shell") or DEFAULT_SHELL), node.rest]

    def _i_cmd(self, state: StageState, node: Node) -> None:
        state.config["Cmd"] = self._exec_or_shell(state, node)
        state.cmd_set = True
        self._meta_step(state, f"CMD {_goq(state.config['Cmd'])}")

    def _i_entrypoint(self, state: StageState, node: Node) -> None:
        state.config["Entrypoint"] = self._exec_or_shell(state, node)
        if not state.cmd_set:
            state.config["Cmd"] = None  # as dockerd: a new ENTRYPOINT drops the base image's CMD
        self._meta_step(state, f"ENTRYPOINT {_goq(state.config['Entrypoint'])}")

    def _i_expose(self, state: StageState, node: Node) -> None:
        ports = dict(state.config.get("ExposedPorts") or {})
        words = self._lexer(state).words(node.rest)
        for w in words:
            port, _, proto = w.partition("/")
            if not port.replace("-", "").isdigit():
                raise StepError(f"invalid containerPort: {port}")
            ports[f"{port}/{proto or 'tcp'}"] = {}
        state.config["ExposedPorts"] = ports
        self._meta_step(state, "EXPOSE " + " ".join(words))

    def _i_volume(self, state: StageState, node: Node) -> None:
        lexer = self._lexer(state)
        vols = node.json_args()
        vols = [lexer.word(v) for v in vols] if vols is not None else lexer.words(node.rest)
        current = dict(state.config.get("Volumes") or {})
        for v in vols:
            if not v.strip():
                raise StepError("VOLUME specified can not be an empty string")
            current[v] = {}
        state.config["Volumes"] = current
        self._meta_step(state, f"VOLUME [{' '.join(vols)}]")

    def _i_user(self, state: StageState, node: Node) -> None:
        state.config["User"] = self._lexer(state).word(node.rest.strip())
        self._meta_step(state, f"USER {state.config['User']}")

    def _i_stopsignal(self, state: StageState, node: Node) -> None:
        state.config["StopSignal"] = self._lexer(state).word(node.rest.strip())
        self._meta_step(state, f"STOPSIGNAL {state.config['StopSignal']}")

    def _i_maintainer(self, state: StageState, node: Node) -> None:
        state.maintainer = node.rest.strip()
        self._meta_step(state, f"MAINTAINER {state.maintainer}")

    def _i_shell(self, state: StageState, node: Node) -> None:
        state.config["Shell"] = node.json_args()
        self._meta_step(state, f"SHELL [{' '.join(state.config['Shell'])}]")

    def _i_onbuild(self, state: StageState, node: Node) -> None:
        trigger = node.rest.strip()
        word, _, rest = trigger.partition(" ")
        trigger = f"{word.upper()} {rest}".strip()
        state.config["OnBuild"] = list(state.config.get("OnBuild") or []) + [trigger]
        self._meta_step(state, f"ONBUILD {trigger}")

    def _i_healthcheck(self, state: StageState, node: Node) -> None:
        word, _, rest = node.rest.strip().partition(" ")
        if word.upper() == "NONE":
            if rest.strip() or node.flags:
                raise ParseError(node.line, "HEALTHCHECK NONE takes no arguments")
            state.config["Healthcheck"] = {"Test": ["NONE"]}
        elif word.upper() == "CMD":
            sub = Node("cmd", rest, rest.strip(), line=node.line)
            args = sub.json_args()
            test = ["CMD", *args] if args is not None else ["CMD-SHELL", rest.strip()]
            hc: dict[str, Any] = {"Test": test}
            for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                value = flag(node, name)
                if value:
                    hc[key] = _duration_ns(value, node.line)
            retries = flag(node, "retries")
            if retries:
                if not retries.isdigit() or int(retries) < 1:
                    raise ParseError(node.line, "--retries must be at least 1")
                hc["Retries"] = int(retries)
            state.config["Healthcheck"] = hc
        else:
            raise ParseError(node.line, "Unknown type \"" + word.upper() + "\" in HEALTHCHECK (try CMD)")
        self._meta_step(state, f"HEALTHCHECK {node.rest.strip()}")


def _goq(items: list[str] | None) -> str:
    """A string slice as Go's %q prints it."""
    return "[" + " ".join(json.dumps(i) for i in (items or [])) + "]"


def _duration_ns(value: str, line: int) -> int:
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    total, num = 0.0, ""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = value[i:i + 2] if value[i:i + 2] in units else value[i]
        if unit not in units or not num:
            raise ParseError(line, f"time: invalid duration \"{value}\"")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        if float(num) != 0:
            raise ParseError(line, f"time: missing unit in duration \"{value}\"")
    return int(total)
