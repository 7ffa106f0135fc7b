"""Variable substitution in Dockerfile words, as moby's shell lexer does it.

Quotes group words and are removed; ``$VAR``, ``${VAR}``, ``${VAR:-word}``,
``${VAR-word}``, ``${VAR:+word}``, ``${VAR+word}`` expand (not inside single
quotes); the escape character keeps the next character literal.
"""

from __future__ import annotations

from typing import Mapping

from .. import errors


class Lexer:
    def __init__(self, env: Mapping[str, str], escape: str = "\\") -> None:
        self.env = env
        self.escape = escape

    def word(self, text: str) -> str:
        """``text`` expanded and unquoted as one word (spaces kept)."""
        return "".join(self._scan(text, split=False)[0]) if text else ""

    def expand(self, text: str) -> str:
        """Variables in ``text`` expanded, quotes and escapes left as written (a heredoc's body)."""
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ch == self.escape and i + 1 < n:
                out.append(text[i:i + 2])
                i += 2
            elif ch == "$":
                value, i = self._dollar(text, i)
                out.append(value)
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def words(self, text: str) -> list[str]:
        """``text`` split into words the way the shell splits them, each expanded and unquoted."""
        return self._scan(text, split=True)

    def _scan(self, text: str, split: bool) -> list[str]:
        words: list[str] = []
        cur: list[str] = []
        in_word = False
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if split and ch in " \t\n":
                if in_word:
                    words.append("".join(cur))
                    cur, in_word = [], False
                i += 1
                continue
            in_word = True
            if ch == self.escape:
                if i + 1 < n:
                    cur.append(text[i + 1])
                    i += 2
                else:
                    cur.append(ch)
                    i += 1
            elif ch == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise errors.InvalidParameter("unexpected end of statement while looking for matching single-quote")
                cur.append(text[i + 1:end])
                i = end + 1
            elif ch == '"':
                i += 1
                while True:
                    if i >= n:
                        raise errors.InvalidParameter(
                            "unexpected end of statement while looking for matching double-quote")
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == self.escape and i + 1 < n and text[i + 1] in ('"', "$", self.escape):
                        cur.append(text[i + 1])
                        i += 2
                    elif c == "$":
                        value, i = self._dollar(text, i)
                        cur.append(value)
                    else:
                        cur.append(c)
                        i += 1
            elif ch == "$":
                value, i = self._dollar(text, i)
                cur.append(value)
            else:
                cur.append(ch)
                i += 1
        if in_word or not split:
            words.append("".join(cur))
        return words

    def _dollar(self, text: str, i: int) -> tuple[str, int]:
        """Expand the variable reference at ``text[i] == '$'``; returns the value and the next index."""
        n = len(text)
        j = i + 1
        if j >= n:
            return "$", j
        if text[j] == "{":
            depth, k = 1, j + 1
            while k < n and depth:
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                k += 1
            if depth:
                raise errors.InvalidParameter(f"missing '}}' in {text!r}")
            body = text[j + 1:k - 1]
            return self._braced(body), k
        k = j
        while k < n and (text[k].isalnum() or text[k] == "_"):
            k += 1
        if k == j:
            return "$", j
        return self.env.get(text[j:k], ""), k

    def _braced(self, body: str) -> str:
        k = 0
        while k < len(body) and (body[k].isalnum() or body[k] == "_"):
            k += 1
        name, op = body[:k], body[k:]
        if not name:
            raise errors.InvalidParameter(f"bad substitution: ${{{body}}}")
        value = self.env.get(name)
        if not op:
            return value or ""
        for prefix in (":-", ":+", "-", "+"):
            if op.startswith(prefix):
                word = self.word(op[len(prefix):])
                if prefix == ":-":
                    return value if value else word
                if prefix == "-":
                    return value if value is not None else word
                if prefix == ":+":
                    return word if value else ""
                return word if value is not None else ""
        raise errors.InvalidParameter(f"unsupported modifier ({op[:1]}) in substitution")
