"""Go's ``path.Match`` (what dockerd's ``reference`` filter globs with), as a regular expression.

``*`` and ``?`` never match ``/``; ``[...]`` classes with ranges and ``^`` negation; ``\\`` escapes the next
character. A malformed pattern raises :class:`BadPattern` (Go's ``path.ErrBadPattern``).
"""

from __future__ import annotations

import functools
import re


class BadPattern(ValueError):
    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The class starting after the ``[`` at ``i - 1``: its regex and the index after its ``]``."""
    negate = i < len(pattern) and pattern[i] == "^"
    i += negate
    items: list[str] = []
    while True:
        if i >= len(pattern):
            raise BadPattern()
        if pattern[i] == "]" and items:
            break
        lo, i = _class_char(pattern, i)
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
            if hi < lo:
                raise BadPattern()
            items.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            items.append(re.escape(lo))
    # a negated class still never matches the separator, as Go's
    return ("[^/" if negate else "[") + "".join(items) + "]", i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern()
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern()
    return pattern[i], i + 1


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            regex, i = _class(pattern, i)
            out.append(regex)
        elif c == "\\":
            if i >= len(pattern):
                raise BadPattern()
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def match(pattern: str, name: str) -> bool:
    return _compile(pattern).fullmatch(name) is not None
