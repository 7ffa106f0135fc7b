"""Dockerfile nodes grouped into build stages, with the checks dockerd makes before any step runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import errors
from ..dockerfile.parser import Dockerfile, Node, ParseError
from . import runsetup

# the flags each instruction takes under the current Dockerfile syntax (docker/dockerfile:1)
FLAGS: dict[str, frozenset[str]] = {
    "from": frozenset({"platform"}),
    "copy": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "add": frozenset({"chown", "chmod", "link", "checksum", "exclude", "keep-git-dir"}),
    "run": frozenset({"mount", "network", "security"}),
    "healthcheck": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}


@dataclass
class Stage:
    index: int
    name: str  # lower-case, "" when unnamed
    from_node: Node
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Plan:
    meta_args: list[Node]
    stages: list[Stage]


def plan(df: Dockerfile, dockerfile_name: str, insecure_allowed: bool = False) -> Plan:
    if not df.nodes:
        raise errors.InvalidParameter(f"the Dockerfile ({dockerfile_name}) cannot be empty")
    meta: list[Node] = []
    stages: list[Stage] = []
    for node in df.nodes:
        allowed = FLAGS.get(node.cmd, frozenset())
        for name, _ in node.flags:
            if name not in allowed:
                raise ParseError(node.line, f"Unknown flag: {name}")
        if node.cmd == "run":
            runsetup.check(node, insecure_allowed)
        if node.cmd == "from":
            words = node.rest.split()
            name = ""
            if len(words) == 3 and words[1].lower() == "as":
                name = words[2].lower()
            elif len(words) != 1:
                raise ParseError(node.line, "FROM requires either one or three arguments")
            stages.append(Stage(len(stages), name, node))
        elif not stages:
            if node.cmd != "arg":
                raise ParseError(node.line, "no build stage in current context")
            meta.append(node)
        else:
            stages[-1].nodes.append(node)
        if node.cmd in ("arg", "env", "label", "copy", "add", "workdir", "user", "expose", "volume",
                        "stopsignal", "maintainer", "shell", "onbuild") and not node.rest.strip():
            raise ParseError(node.line, f"{node.cmd.upper()} requires at least one argument")
        if node.cmd in ("copy", "add") and len(node.rest.split()) < 2 and not node.heredocs:
            raise ParseError(node.line, f"{node.cmd.upper()} requires at least two arguments, but only one "
                                        f"was provided. Destination could not be determined.")
        if node.cmd == "shell" and node.json_args() is None:
            raise ParseError(node.line, "SHELL requires the arguments to be in JSON form")
        if node.cmd == "onbuild" and node.rest.split()[0].upper() in ("ONBUILD", "FROM", "MAINTAINER"):
            raise ParseError(node.line, f"{node.rest.split()[0].upper()} isn't allowed as an ONBUILD trigger")
    if not stages:
        raise ParseError(df.nodes[-1].line, "no build stage in current context")
    seen: set[str] = set()
    for st in stages:
        if st.name:
            if st.name in seen:
                raise ParseError(st.from_node.line, f"duplicate name {st.name}")
            seen.add(st.name)
    return Plan(meta, stages)
