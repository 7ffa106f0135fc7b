"""Go's wording for a JSON syntax error, which clients and scripts match on.

dockerd reads request bodies with Go's encoding/json decoder; Python's json module
finds the same errors but words them its own way ("Expecting value: line 1 column 1").
``go_error`` scans a body that Python refused and says what Go says about its first
error: ``invalid character 'x' looking for beginning of value``, or ``unexpected EOF``
when the document stops short. Only refused bodies are scanned, so the common path
keeps the C parser's speed.
"""

from __future__ import annotations

_WHITESPACE = b" \t\r\n"
_ESCAPES = b'"\\/bfnrtu'
_HEX = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_GO_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v"}


class _Error(Exception):
    pass


def quote_char(c: int) -> str:
    """A byte as Go's scanner quotes it in a message: 'x', '\\n', '\\x01', '"', '\\''."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    if c in _GO_ESCAPES:
        return f"'{_GO_ESCAPES[c]}'"
    ch = chr(c)  # Go's scanner works on bytes: a byte of a UTF-8 sequence is shown as that code point
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    if not ch.isprintable():
        return f"'\\u{c:04x}'"
    return f"'{ch}'"


def reject_constant(name: str) -> None:
    """For json.loads: Go has no NaN or Infinity, and neither may a body."""
    raise ValueError(f"{name} is not JSON")


def go_error(data: bytes) -> str:
    """Go's message for the first syntax error in ``data``; "" when its first value is valid JSON."""
    try:
        end = _Scanner(data).document()
    except _Error as e:
        return str(e)
    rest = data[end:].lstrip(_WHITESPACE)
    return f"invalid character {quote_char(rest[0])} after top-level value" if rest else ""


class _Scanner:
    """Walks one JSON value with an explicit stack: no recursion, however deep the input nests."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def _peek(self) -> int:
        """The next byte after whitespace; running out of input is Go's unexpected EOF."""
        data, i = self.data, self.i
        while i < len(data) and data[i] in _WHITESPACE:
            i += 1
        self.i = i
        if i >= len(data):
            raise _Error("unexpected EOF")
        return data[i]

    def _bad(self, c: int, context: str) -> _Error:
        return _Error(f"invalid character {quote_char(c)} {context}")

    def document(self) -> int:
        stack: list[int] = []  # the opening bracket of each container we are in
        want_value = True
        while True:
            if want_value:
                opened = self._value()
                if opened == ord("{") and self._peek() != ord("}"):
                    stack.append(opened)
                    self._key()
                    continue
                if opened == ord("[") and self._peek() != ord("]"):
                    stack.append(opened)
                    continue
                if opened:
                    self.i += 1  # an empty object or array, closed at once
            # after a value: the end of the document, or what its container allows next
            if not stack:
                return self.i
            c = self._peek()
            self.i += 1
            closing = ord("}") if stack[-1] == ord("{") else ord("]")
            if c == closing:
                stack.pop()
                want_value = False
            elif c != ord(","):
                raise self._bad(c, "after object key:value pair" if closing == ord("}") else "after array element")
            else:
                if closing == ord("}"):
                    self._key()
                want_value = True

    def _key(self) -> None:
        c = self._peek()
        if c != ord('"'):
            raise self._bad(c, "looking for beginning of object key string")
        self.i += 1
        self._string()
        c = self._peek()
        if c != ord(":"):
            raise self._bad(c, "after object key")
        self.i += 1

    def _value(self) -> int:
        """A scalar read whole, or the bracket of an object or array just opened (0 for a scalar)."""
        c = self._peek()
        self.i += 1
        if c in b"{[":
            return c
        if c == ord('"'):
            self._string()
        elif c == ord("-") or c in _DIGITS:
            self._number(c)
        elif c in _LITERALS:
            self._literal(_LITERALS[c])
        else:
            raise self._bad(c, "looking for beginning of value")
        return 0

    def _string(self) -> None:
        data = self.data
        while self.i < len(data):
            c = data[self.i]
            self.i += 1
            if c == ord('"'):
                return
            if c == ord("\\"):
                if self.i >= len(data):
                    break
                esc = data[self.i]
                self.i += 1
                if esc not in _ESCAPES:
                    raise self._bad(esc, "in string escape code")
                if esc == ord("u"):
                    for _ in range(4):
                        if self.i >= len(data):
                            raise _Error("unexpected EOF")
                        if data[self.i] not in _HEX:
                            raise self._bad(data[self.i], "in \\u hexadecimal character escape")
                        self.i += 1
            elif c < 0x20:
                raise self._bad(c, "in string literal")
        raise _Error("unexpected EOF")

    def _digit(self, context: str) -> None:
        if self.i >= len(self.data):
            raise _Error("unexpected EOF")
        if self.data[self.i] not in _DIGITS:
            raise self._bad(self.data[self.i], context)

    def _digits(self) -> None:
        while self.i < len(self.data) and self.data[self.i] in _DIGITS:
            self.i += 1

    def _number(self, first: int) -> None:
        if first == ord("-"):
            self._digit("in numeric literal")
            first = self.data[self.i]
            self.i += 1
        if first != ord("0"):
            self._digits()
        data = self.data
        if self.i < len(data) and data[self.i] == ord("."):
            self.i += 1
            self._digit("after decimal point in numeric literal")
            self._digits()
        if self.i < len(data) and data[self.i] in b"eE":
            self.i += 1
            if self.i < len(data) and data[self.i] in b"+-":
                self.i += 1
            self._digit("in exponent of numeric literal")
            self._digits()

    def _literal(self, word: bytes) -> None:
        for expected in word[1:]:
            if self.i >= len(self.data):
                raise _Error("unexpected EOF")
            c = self.data[self.i]
            if c != expected:
                raise self._bad(c, f"in literal {word.decode()} (expecting {quote_char(expected)})")
            self.i += 1
