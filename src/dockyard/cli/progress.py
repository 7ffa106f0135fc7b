"""Progress of pull and push on a terminal, drawn as the docker CLI draws it.

docker's ``jsonmessage.DisplayJSONMessagesStream`` with a terminal: every
message with an ``id`` and progress owns a line; a new id adds a line, an
update moves the cursor up to that line, rewrites it and moves back down.
Any other message clears the table of lines. Bars come from
``progressDetail`` (``[====>   ]  1.2MB/3.4MB``), shown when the terminal is
wider than 110 columns.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, TextIO

from .connection import StreamError
from .output import human_size


def bar(detail: dict[str, Any], width: int) -> str:
    """JSONProgress.String: the bar and the byte counts."""
    current, total = int(detail.get("current") or 0), int(detail.get("total") or 0)
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    percentage = min(int(current / total * 100) // 2, 50)
    box = f"[{'=' * percentage}>{' ' * max(0, 50 - percentage)}] " if width > 110 else ""
    numbers = f"{human_size(current):>8}/{human_size(total)}" if current <= total else f"{human_size(current):>8}"
    return box + numbers


def display_terminal(messages: Iterable[dict[str, Any]], out: TextIO) -> list[dict[str, Any]]:
    """Draw the stream; returns its ``aux`` payloads; raises StreamError on an error message."""
    try:
        width = os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError):
        width = 200
    ids: dict[str, int] = {}
    aux: list[dict[str, Any]] = []
    for msg in messages:
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error") or "unknown error")
        if "aux" in msg:
            aux.append(msg["aux"])
            continue
        has_progress = "progressDetail" in msg or bool(msg.get("progress"))
        ident = msg.get("id") or ""
        diff = 0
        if ident and has_progress:
            if ident not in ids:
                ids[ident] = len(ids)
                out.write("\n")
            diff = len(ids) - ids[ident]
            out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        endl = ""
        if not msg.get("stream") and has_progress:
            out.write("\r\x1b[2K")
            endl = "\r"
        if ident:
            out.write(f"{ident}: ")
        if msg.get("from"):
            out.write(f"(from {msg['from']}) ")
        status = msg.get("status", "")
        if has_progress and not msg.get("stream"):
            out.write(f"{status} {bar(msg.get('progressDetail') or {}, width)}{endl}")
        elif msg.get("stream"):
            out.write(f"{msg['stream']}{endl}")
        else:
            out.write(f"{status}{endl}\n")
        if ident and has_progress:
            out.write(f"\x1b[{diff}B")
        out.flush()
    return aux
