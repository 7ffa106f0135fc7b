""".dockerignore patterns with moby's patternmatcher semantics.

A pattern is a cleaned, slash-separated path glob: ``*`` and ``?`` stay within
one path element, ``**`` spans any number of them, ``\\`` escapes. ``!`` marks
an exception. The last pattern matching a path (or one of its parent
directories) decides whether the path is excluded.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass


@dataclass
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 >= n:
                    out.append(".*")
                elif pattern[i + 1] == "/":
                    out.append("(.*/)?")
                    i += 1
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append(r"\Z")  # Go's "$": the end of the text ("$" would also match before a final newline)
    return re.compile("".join(out), re.DOTALL)


class Matcher:
    def __init__(self, lines: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            if not line:
                continue
            cleaned = posixpath.normpath(line.replace(os.sep, "/"))
            cleaned = cleaned.lstrip("/") or "."
            self.patterns.append(Pattern(cleaned, exclusion, _compile(cleaned)))

    @classmethod
    def from_text(cls, text: str) -> "Matcher":
        return cls(text.splitlines())

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, rel: str) -> bool:
        """Whether the context path ``rel`` (slash-separated, relative) is left out."""
        rel = posixpath.normpath(rel).lstrip("/")
        parents = []
        head = posixpath.dirname(rel)
        while head:
            parents.append(head)
            head = posixpath.dirname(head)
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # cannot change the outcome
            hit = bool(p.regex.match(rel)) or any(p.regex.match(d) for d in parents)
            if hit:
                matched = not p.exclusion
        return matched
