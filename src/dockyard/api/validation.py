"""Request bodies checked at the boundary, against the Engine API's own types.

The router reads a JSON endpoint's body through ``read_body``: bounded,
parsed (a body Python's json refuses described in Go's words), and checked
against the operation's schema by ``apischema/validator.py``, so no handler
ever sees a body of the wrong shape.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from .. import errors
from ..apischema import validator
from ..httpd import jsonsyntax
from ..httpd.server import Request

# Nesting deeper than any Engine API body; checked before parsing, without recursion
# (Python's json would raise RecursionError only near a thousand levels).
MAX_DEPTH = 64
# The largest JSON body accepted: a container create with every option is a few KiB.
MAX_BODY = 4 * 1024 * 1024
INLINE_BODY = 64 * 1024  # parsed on the event loop up to this; larger bodies in a thread
JSON_TYPE = "application/json"

# A JSON string, or an unterminated one up to the end: possessive and with no way to fail once
# started, so the scan is linear (a string that could fail would be retried from every quote
# inside it: quadratic, minutes of the event loop for a few hundred KiB of '\"').
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def check_depth(data: bytes) -> None:
    brackets = _STRINGS.sub(b"", data).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH:
        return
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH:
            raise errors.InvalidParameter(f"invalid JSON: nested deeper than {MAX_DEPTH} levels")


def check_content_type(request: Request) -> None:
    """dockerd's CheckForJSON: a body is JSON only when the client says so.

    This is what keeps a web page from driving the API: a browser sends a
    cross-site POST without asking first only as text/plain, a form or multipart.
    """
    ct = request.headers.get("content-type", "")
    if ct.split(";", 1)[0].strip().lower() != JSON_TYPE:
        raise errors.InvalidParameter(f"unsupported Content-Type header ({ct}): must be '{JSON_TYPE}'")


async def read_body(request: Request, operation: str) -> Any:
    """The request's JSON body, bounded, parsed and checked against the operation's schema."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.InvalidParameter(f"request body is larger than {MAX_BODY} bytes")
        chunks.append(bytes(chunk))
    data = b"".join(chunks)
    if not data:
        return None  # docker-py posts some bodiless requests without a Content-Type
    check_content_type(request)
    if len(data) > INLINE_BODY:  # megabytes of JSON take a while: not on the event loop
        return await asyncio.to_thread(parse, operation, data)
    return parse(operation, data)


def parse(operation: str, data: bytes) -> Any:
    """``data`` parsed and checked against the operation's schema (None for an empty document)."""
    if not data.strip():
        return None
    check_depth(data)
    try:
        body = json.loads(data, parse_constant=jsonsyntax.reject_constant)
    except (ValueError, RecursionError) as e:
        raise errors.InvalidParameter(jsonsyntax.go_error(data) or f"invalid JSON: {e}") from None
    if body is None:
        return None
    validator.check(operation, body)
    return body
