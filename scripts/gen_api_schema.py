#!/usr/bin/env python3
"""Generate src/dockyard/apischema/request_schema.json from the Engine API spec (swagger 2.0).

The daemon validates every JSON request body against this file (apischema/validator.py);
it never reads the spec at run time. Run after updating the spec:

    python scripts/gen_api_schema.py /work/shared/api/docker-engine-v1.50.yaml

The spec's schemas are turned into what dockerd's Go decoder accepts, no more:
- every ``$ref`` and ``allOf`` is inlined (JSON-schema validators need no swagger knowledge);
- every object property may be ``null`` (Go leaves the field at its zero value);
  array items and map values may not (our handlers would hold a ``None``);
- integer ``format``s become the Go type's range (``uint16``: 0..65535), plain integers int64's;
- ``enum``, ``minimum``/``maximum``, ``pattern``, ``minItems``/``maxItems``, ``required`` and
  ``additionalProperties: false`` go: the decoder does not check them, the handlers do with
  dockerd's own wording;
- ``Cmd``/``Entrypoint``/``Shell`` also take a string (Go's strslice.StrSlice);
- dockerd's grammars are added as named ``format``s (ports, host names, extra hosts,
  interface names) that validator.py implements, each with dockerd's message.
``x-go-type`` keeps the Go type for error messages, ``x-go-root`` the decoded struct's name.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "src" / "dockyard" / "apischema" / "request_schema.json"

# content types whose bodies are not JSON documents (archives, build contexts, image names)
NOT_JSON = {"application/x-tar", "text/plain"}

# the Go struct each endpoint decodes its body into (the first word of dockerd's decode errors)
GO_ROOT = {
    "POST /containers/create": "ContainerConfigWrapper",
    "POST /commit": "ContainerConfigWrapper",
    "POST /containers/{}/update": "UpdateConfig",
    "POST /containers/{}/exec": "ExecOptions",
    "POST /exec/{}/start": "ExecStartOptions",
    "POST /volumes/create": "CreateOptions",
    "POST /networks/create": "CreateRequest",
    "POST /networks/{}/connect": "ConnectOptions",
    "POST /networks/{}/disconnect": "DisconnectOptions",
    "POST /auth": "AuthConfig",
}

INT_RANGES = {
    "int8": ("int8", -2**7, 2**7 - 1), "int16": ("int16", -2**15, 2**15 - 1),
    "int32": ("int32", -2**31, 2**31 - 1), "int64": ("int64", -2**63, 2**63 - 1),
    "uint8": ("uint8", 0, 2**8 - 1), "uint16": ("uint16", 0, 2**16 - 1),
    "uint32": ("uint32", 0, 2**32 - 1), "uint64": ("uint64", 0, 2**64 - 1),
}
DROP = {"enum", "minimum", "maximum", "pattern", "minItems", "maxItems", "required", "format", "default",
        "example", "description", "x-nullable", "x-omitempty", "readOnly", "title", "x-go-name",
        "discriminator", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "uniqueItems"}
STR_SLICES = {"Cmd", "Entrypoint", "Shell"}


def resolve(spec: dict[str, Any], schema: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            raise SystemExit(f"recursive definition {name}")
        out = resolve(spec, spec["definitions"][name], seen + (name,))
        out.setdefault("x-go-type", name)
        return out
    if "allOf" in schema:
        parts = [resolve(spec, part, seen) for part in schema["allOf"]]
        if len(parts) == 1:  # the spec's way to describe a $ref
            return parts[0]
        merged: dict[str, Any] = {"type": "object", "properties": {}}
        for part in parts:
            if part.get("type") != "object":
                raise SystemExit(f"allOf of non-objects: {schema}")
            merged["properties"].update(part.get("properties", {}))
        return merged
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROP:
            continue
        if key == "properties":
            out[key] = {name: nullable(resolve(spec, sub, seen)) for name, sub in value.items()}
            for name in STR_SLICES & set(value):
                out[key][name]["type"] = ["array", "string", "null"]
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = resolve(spec, value, seen)
        elif key == "additionalProperties" and value is False:
            continue
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "integer":
        go, lo, hi = INT_RANGES.get(schema.get("format", ""), ("int64", -2**63, 2**63 - 1))
        out.update({"minimum": lo, "maximum": hi, "x-go-type": go})
    return out


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    return schema


def at(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    for name in path:
        schema = schema["properties"][name] if name not in ("[]", "{}") else \
            schema["items"] if name == "[]" else schema["additionalProperties"]
    return schema


def add_grammars(ops: dict[str, dict[str, Any]]) -> None:
    """dockerd's grammars for the strings it parses, as formats validator.py knows."""
    for key in ("POST /containers/create", "POST /commit"):
        body = ops[key]["schema"]
        body["properties"]["ExposedPorts"]["propertyNames"] = {"format": "container-port"}
        at(body, "Hostname")["format"] = "hostname"
        at(body, "Domainname")["format"] = "hostname"
        at(body, "MacAddress")["format"] = "mac-address"
        if key == "POST /containers/create":
            at(body, "Image")["format"] = "image-reference"
            host = at(body, "HostConfig")
            host["properties"]["PortBindings"]["propertyNames"] = {"format": "container-port"}
            at(host, "PortBindings", "{}", "[]", "HostPort")["format"] = "host-port"
            at(host, "ExtraHosts", "[]")["format"] = "extra-host"
            at(host, "PortBindings", "{}", "[]", "HostIp")["format"] = "ip-address"
            # these become lines of the container's resolv.conf: one value, one line
            at(host, "Dns", "[]")["format"] = "ip-address"
            at(host, "DnsSearch", "[]")["format"] = "dns-search"
            at(host, "DnsOptions", "[]")["format"] = "single-word"
            at(body, "NetworkingConfig", "EndpointsConfig", "{}", "MacAddress")["format"] = "mac-address"
    at(ops["POST /networks/{}/connect"]["schema"], "EndpointConfig", "MacAddress")["format"] = "mac-address"
    options = at(ops["POST /networks/create"]["schema"], "Options")
    options["properties"] = {"com.docker.network.bridge.name": {"type": "string", "format": "interface-name"}}


def generate(spec_path: str) -> dict[str, Any]:
    spec = yaml.safe_load(Path(spec_path).read_text())
    ops: dict[str, dict[str, Any]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method == "parameters":
                continue
            consumes = set(op.get("consumes") or spec.get("consumes") or [])
            for param in op.get("parameters", []):
                schema = param.get("schema") or {}
                if param.get("in") != "body" or schema.get("type") == "string" or consumes <= NOT_JSON:
                    continue
                key = f"{method.upper()} {template(path)}"
                body = resolve(spec, schema)
                body["x-go-root"] = GO_ROOT.get(key, body.get("x-go-type") or schema.get("title") or "body")
                ops[key] = {"schema": body}
    add_grammars(ops)
    return {"source": f"Engine API {spec['info']['version']} ({Path(spec_path).name})", "operations": ops}


def template(path: str) -> str:
    """``/containers/{id}/exec`` → ``/containers/{}/exec``: the router matches its own templates so."""
    out, depth = [], 0
    for ch in path:
        if ch == "{":
            depth += 1
            if depth == 1:
                out.append("{}")
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def main() -> None:
    text = json.dumps(generate(sys.argv[1]), indent=1, sort_keys=True) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
