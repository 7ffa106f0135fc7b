"""Printing the daemon's JSON message streams (load, import; later pull, push, build).

Follows the docker CLI's ``jsonmessage.DisplayJSONMessagesStream``: ``stream``
text verbatim, ``id: status`` lines, progress bars only on a terminal, and the
first ``error`` ends the display with that error.
"""

from __future__ import annotations

from typing import Any, Iterable, TextIO

from .connection import StreamError


def _has_progress(msg: dict[str, Any]) -> bool:
    detail = msg.get("progressDetail") or {}
    return bool(detail.get("current") or detail.get("total")) or bool(msg.get("progress"))


def display(messages: Iterable[dict[str, Any]], out: TextIO, is_terminal: bool = False) -> list[dict[str, Any]]:
    """Print the stream; returns the ``aux`` payloads; raises StreamError on an error message."""
    aux: list[dict[str, Any]] = []
    for msg in messages:
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error") or "unknown error")
        if "aux" in msg:
            aux.append(msg["aux"])
            continue
        if _has_progress(msg) and not msg.get("stream"):
            if not is_terminal:
                continue
            line = f"{msg.get('id')}: " if msg.get("id") else ""
            out.write(f"\r\x1b[2K{line}{msg.get('status', '')} {msg.get('progress', '')}\r")
            out.flush()
            continue
        if msg.get("id"):
            out.write(f"{msg['id']}: ")
        if msg.get("from"):
            out.write(f"(from {msg['from']}) ")
        if msg.get("stream"):
            out.write(msg["stream"])
        else:
            out.write(f"{msg.get('status', '')}\n")
        out.flush()
    return aux
