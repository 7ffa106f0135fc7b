"""The Engine API's request body types, and the checks of a body against them.

``request_schema.json`` (generated from the Engine API spec by
``scripts/gen_api_schema.py``) holds each operation's body schema, compiled
once with fastjsonschema; an error names the field as dockerd's Go decoder
does. dockerd's grammars for the strings it parses (ports, host names, extra
hosts, interface names) are formats of the same schema.

It sits below the HTTP layer because more than requests are checked with it:
a container record read back from disk must be what create would have
accepted (``containers/record.py``), an image list skips configs of the wrong
types. ``api/validation.py`` reads request bodies and checks them here.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import marshal
import re
import subprocess
import sys
import threading
from functools import cache
from importlib import resources
from typing import Any, Callable

import fastjsonschema

from .. import errors
from ..util import reference

_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_CONTAINER_PORT = re.compile(rf"({_PORT})(?:-({_PORT}))?(?:/(tcp|udp|sctp))?", re.ASCII)
_HOST_PORT = re.compile(rf"(?:{_PORT}(?:-{_PORT})?)?", re.ASCII)
# dockerd's hostname check (RFC 1123 labels, ASCII)
_HOSTNAME = re.compile(r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*"
                       r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])", re.ASCII)
_IFNAME = re.compile(r"[^\s/:]{1,15}", re.ASCII)
_IMAGE_ID = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}")


def _reference_error(value: str) -> str:
    """distribution/reference's complaint about ``value``; "" for a reference or an image ID (prefix)."""
    if not value or _IMAGE_ID.fullmatch(value):
        return ""
    try:
        reference.parse(value)
    except errors.InvalidParameter as e:
        return str(e)
    return ""


def _container_port(value: str) -> bool:
    m = _CONTAINER_PORT.fullmatch(value)
    return bool(m) and (m.group(2) is None or int(m.group(1)) <= int(m.group(2)))


def _extra_host(value: str) -> bool:
    # "host:ip" (dockerd also takes "host=ip"); the ip may be an IPv6 address or host-gateway
    sep = min((i for i in (value.find(":"), value.find("=")) if i > 0), default=-1)
    if sep < 0 or not value[:sep] or any(c.isspace() for c in value):
        return False
    addr = value[sep + 1:]
    if addr == "host-gateway":
        return True
    try:
        ipaddress.ip_address(addr[1:-1] if addr.startswith("[") and addr.endswith("]") else addr)
    except ValueError:
        return False
    return True


def _ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


FORMATS: dict[str, Callable[[str], bool]] = {
    "container-port": _container_port,
    "host-port": lambda v: bool(_HOST_PORT.fullmatch(v)),
    "hostname": lambda v: v == "" or (len(v) <= 255 and bool(_HOSTNAME.fullmatch(v))),
    "extra-host": _extra_host,
    "interface-name": lambda v: v == "" or (bool(_IFNAME.fullmatch(v)) and v not in (".", "..")),
    "image-reference": lambda v: not _reference_error(v),
    "ip-address": lambda v: v == "" or _ip_address(v),
    "dns-search": lambda v: v == "." or (len(v) <= 255 and bool(_HOSTNAME.fullmatch(v.rstrip(".")))),
    "single-word": lambda v: bool(v) and not any(c.isspace() for c in v),
    "mac-address": lambda v: v == "" or bool(_MAC.fullmatch(v)),
}
def _container_port_error(value: str) -> str:
    port, _, proto = value.partition("/")
    if _CONTAINER_PORT.fullmatch(port):
        return f"invalid proto: {proto}"
    return f'invalid port specification: "{port}"'


# dockerd's (or the docker CLI's) wording for each grammar
FORMAT_ERRORS: dict[str, Callable[[str], str]] = {
    "container-port": _container_port_error,
    "host-port": lambda v: f'invalid port specification: "{v}"',
    "hostname": lambda v: f"invalid hostname format: {v}",
    "extra-host": lambda v: f'invalid IP address in add-host: "{v}"',
    "interface-name": lambda v: f'invalid bridge name: "{v}"',
    "image-reference": _reference_error,
    "ip-address": lambda v: f"invalid IP address: {v}",
    "dns-search": lambda v: f"{v} is not a valid domain",
    "single-word": lambda v: f"invalid DNS option: {v!r}",
    "mac-address": lambda v: f"{v} is not a valid mac address",
}


@cache
def _operations() -> dict[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath("request_schema.json").read_text(encoding="utf-8")
    return json.loads(text)["operations"]


def has_body(operation: str) -> bool:
    """Whether ``"POST /containers/{}/update"`` takes a JSON body."""
    return operation in _operations()


_compile_lock = threading.Lock()
_compiled: dict[str, Callable[[Any], Any]] = {}

# Run in a child: fastjsonschema's code generation peaks at ~18 MiB for the create schema, and the
# arenas it fragments stay in the daemon's RSS for good (+13-21 MiB at idle, measured); the child
# hands back only marshalled code objects, which load without that peak.
_GENERATE = """
import json, marshal, sys
import fastjsonschema
job = json.load(sys.stdin)
out = {op: marshal.dumps(compile(fastjsonschema.compile_to_code(schema, formats=dict.fromkeys(job["formats"])),
                                 "<schema " + op + ">", "exec"))
       for op, schema in job["schemas"].items()}
sys.stdout.buffer.write(marshal.dumps(out))
"""


def _compile(operations: list[str]) -> None:
    """Validators for ``operations`` into ``_compiled`` (caller holds ``_compile_lock``)."""
    wanted = [op for op in operations if op not in _compiled]
    if not wanted:
        return
    job = json.dumps({"formats": list(FORMATS), "schemas": {op: _operations()[op]["schema"] for op in wanted}})
    res = subprocess.run([sys.executable, "-c", _GENERATE], input=job.encode(), capture_output=True, check=True)
    for op, code in marshal.loads(res.stdout).items():
        namespace: dict[str, Any] = {}
        exec(marshal.loads(code), namespace)  # our own generated code, from our own schema
        _compiled[op] = functools.partial(namespace["validate"], custom_formats=FORMATS)


def _validator(operation: str) -> Callable[[Any], Any]:
    found = _compiled.get(operation)
    if found is None:
        with _compile_lock:  # compiled once, whichever thread asks first
            _compile([operation])
            found = _compiled[operation]
    return found


def warm(operations: list[str]) -> None:
    """Compile the validators in the background (container create's takes a third of a second)."""
    def run() -> None:
        with _compile_lock:
            _compile(operations)

    threading.Thread(target=run, name="schema-compile", daemon=True).start()


def check(operation: str, body: Any) -> None:
    """Raise InvalidParameter, worded as dockerd words it, unless ``body`` fits ``operation``'s schema."""
    try:
        _validator(operation)(body)
    except fastjsonschema.JsonSchemaValueException as e:
        text = describe(operation, e)
        raise errors.legacy(errors.InvalidParameter(text), reference.worded_before_1_44(text)) from None


def problem(operation: str, body: Any) -> str:
    """What is wrong with ``body`` for ``operation`` ("" if nothing): for records read back from disk."""
    try:
        _validator(operation)(body)
    except fastjsonschema.JsonSchemaValueException as e:
        return describe(operation, e)
    return ""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_type(schema: dict[str, Any]) -> str:
    if "x-go-type" in schema:
        return str(schema["x-go-type"])
    kinds = schema.get("type")
    kind = next((k for k in kinds if k != "null"), "") if isinstance(kinds, list) else kinds
    if kind == "array":
        return "[]" + _go_type(schema.get("items") or {})
    if kind == "object":
        if isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
            return "map[string]" + _go_type(schema["additionalProperties"])
        return "struct"
    return {"string": "string", "boolean": "bool", "number": "float64", "integer": "int64"}.get(str(kind), "interface {}")


def _go_field(schema: dict[str, Any], path: list[str]) -> str:
    """The Go decoder's field path: struct fields only, not array indexes or map keys."""
    fields = []
    for part in path:
        if part in (schema.get("properties") or {}):
            fields.append(part)
            schema = schema["properties"][part]
        elif "items" in schema and part.isdigit():
            schema = schema["items"]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            break
    return ".".join(fields)


def describe(operation: str, e: fastjsonschema.JsonSchemaValueException) -> str:
    root = _operations()[operation]["schema"]
    path = list(e.path[1:])
    where = ".".join([root["x-go-root"], *filter(None, [_go_field(root, path)])])
    definition = e.definition or {}
    if e.rule == "format" and isinstance(e.value, str):
        return FORMAT_ERRORS[definition["format"]](e.value)
    if e.rule == "propertyNames" and isinstance(e.value, dict):
        fmt = definition["propertyNames"]["format"]
        bad = next(k for k in e.value if not FORMATS[fmt](k))
        return FORMAT_ERRORS[fmt](bad)
    if e.rule == "type" and where == root["x-go-root"]:
        return f"json: cannot unmarshal {_json_kind(e.value)} into Go value of type {where}"
    if e.rule == "type":
        return f"json: cannot unmarshal {_json_kind(e.value)} into Go struct field {where} of type {_go_type(definition)}"
    if e.rule in ("minimum", "maximum"):
        return f"json: cannot unmarshal number {e.value} into Go struct field {where} of type {_go_type(definition)}"
    return f"invalid value for {where}: {e.message.replace('data', root['x-go-root'], 1)}"
