"""The Dockerfile parser: text to instruction nodes, as moby's buildkit/frontend/dockerfile/parser reads it.

It handles parser directives (``# escape=``, ``# syntax=``), comments, line
continuations (with the escape character), empty continuation lines, ``--flag``
prefixes and heredocs (``RUN <<EOF`` … ``EOF``). Arguments are kept raw;
variable expansion happens when the builder evaluates a step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .. import errors
from .directives import Checks, check_syntax, parse_checks

INSTRUCTIONS = frozenset({
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label", "maintainer",
    "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
})
# instructions whose heredocs are allowed by the current Dockerfile syntax
HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([a-zA-Z_][a-zA-Z0-9_]*)\2")
_FLAG = re.compile(r"--([a-zA-Z0-9-]+)(?:=(.*))?", re.DOTALL)


class ParseError(errors.InvalidParameter):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"dockerfile parse error line {line}: {message}")
        self.line = line


@dataclass
class Heredoc:
    name: str
    content: str
    expand: bool  # unquoted delimiter: variables are expanded
    chomp: bool  # <<- strips leading tabs


@dataclass
class Node:
    """One instruction: ``cmd`` lower-case, ``flags`` (``--name=value`` in order), the rest raw."""

    cmd: str
    original: str  # the instruction as written (continuations joined), for "Step N/M : ..."
    rest: str  # text after the instruction name and flags
    flags: list[tuple[str, str | None]] = field(default_factory=list)
    line: int = 0
    end_line: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)

    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form of ``rest``, or None for the shell form."""
        text = self.rest.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass
class Dockerfile:
    nodes: list[Node]
    escape: str = "\\"
    syntax: str = ""
    checks: Checks = field(default_factory=Checks)


def parse(text: str) -> Dockerfile:
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    escape = "\\"
    i = 0
    # parser directives: only at the very top, before any blank line, comment or instruction
    seen: set[str] = set()
    syntax = ""
    checks = Checks()
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            break
        name = m.group(1).lower()
        if name in seen:
            raise ParseError(i + 1, f"only one {name} parser directive can be used")
        seen.add(name)
        if name == "escape":
            if m.group(2) not in ("\\", "`"):
                raise ParseError(i + 1, f"invalid escape token '{m.group(2)}' does not match ` or \\")
            escape = m.group(2)
        elif name == "syntax":
            check_syntax(m.group(2), i + 1)
            syntax = m.group(2)
        elif name == "check":
            checks = parse_checks(m.group(2), i + 1)
        i += 1
    nodes: list[Node] = []
    cont = re.compile(re.escape(escape) + r"[ \t]*$")
    while i < len(lines):
        start = i
        raw = lines[i]
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [raw.lstrip()]
        while cont.search(parts[-1]):
            parts[-1] = cont.sub("", parts[-1])
            # comment lines and empty lines inside a continuation are skipped
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            parts.append(lines[i])
            i += 1
        logical = "".join(parts)
        node = _node(logical, start + 1, escape)
        if node.cmd in HEREDOC_INSTRUCTIONS:
            i = _read_heredocs(node, lines, i)
        node.end_line = i
        nodes.append(node)
    return Dockerfile(nodes, escape, syntax, checks)


def _node(logical: str, line: int, escape: str) -> Node:
    word, _, rest = logical.strip().partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest
    cmd = word.lower()
    if cmd not in INSTRUCTIONS:
        raise ParseError(line, f"unknown instruction: {word.upper()}")
    flags: list[tuple[str, str | None]] = []
    rest = rest.strip()
    if cmd not in ("onbuild",):
        while rest.startswith("--"):
            token, _, after = rest.partition(" ")
            m = _FLAG.fullmatch(token)
            if not m:
                break
            flags.append((m.group(1), m.group(2)))
            rest = after.lstrip()
    return Node(cmd=cmd, original=logical.strip(), rest=rest, flags=flags, line=line)


def _read_heredocs(node: Node, lines: list[str], i: int) -> int:
    if node.json_args() is not None:
        return i
    for m in _HEREDOC.finditer(node.rest):
        chomp, quote, name = m.group(1) == "-", m.group(2), m.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise ParseError(node.line, f"unterminated heredoc {name}")
            text = lines[i]
            i += 1
            check = text.lstrip("\t") if chomp else text
            if check == name:
                break
            body.append(text.lstrip("\t") if chomp else text)
        node.heredocs.append(Heredoc(name, "\n".join(body) + "\n", expand=not quote, chomp=chomp))
    return i


def heredoc_only(node: Node) -> bool:
    """The instruction's arguments are one here-document and nothing else (``RUN <<EOF``)."""
    return bool(_HEREDOC.fullmatch(node.rest.strip()))


def flag(node: Node, name: str) -> str | None:
    """The value of ``--name`` on the instruction: the last one given, "" when bare, None when absent."""
    value = None
    for key, v in node.flags:
        if key == name:
            value = v if v is not None else ""
    return value
