"""Detach keys: the sequence in a client's input that ends its attach but leaves the process running."""

from __future__ import annotations

from .. import errors

DEFAULT_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_keys(spec: str, kind: str = "detach") -> bytes:
    """``ctrl-p,ctrl-q`` → b"\\x10\\x11"; an empty string turns detaching off. ``kind`` names the keys
    in the error, as dockerd does ("escape" for an exec's)."""
    out = bytearray()
    for key in filter(None, spec.split(",")):
        key = key.strip().lower()
        # as moby's term.ToBytes: one ASCII key, or ctrl- with a letter or one of @[\\]^_ (else refused)
        ch = key[5:] if key.startswith("ctrl-") else ""
        if len(ch) == 1 and ("a" <= ch <= "z" or ch in _CTRL_SPECIAL):
            out.append(_CTRL_SPECIAL.get(ch, ord(ch) - ord("a") + 1))
        elif len(key) == 1 and key.isascii():
            out.append(ord(key))
        else:
            raise errors.InvalidParameter(f"Invalid {kind} keys ({spec}) provided")
    return bytes(out)


def keys_or_default(spec: str | None) -> bytes:
    """The keys a client asked for (None: it did not ask), else ctrl-p,ctrl-q."""
    return parse_keys(spec) if spec is not None else DEFAULT_KEYS


class Scanner:
    """Finds the detach sequence in a client's input; bytes that may start it are held back until
    the next input decides."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(the input to pass on, whether the sequence is complete)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    return bytes(out), True
                continue
            out += self.keys[:self.matched]
            self.matched = 1 if byte == self.keys[0] else 0
            if not self.matched:
                out.append(byte)
        return bytes(out), False
