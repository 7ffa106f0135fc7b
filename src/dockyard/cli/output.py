"""What every command prints with: docker's table writer, ``--format`` handling and units.

The formatting mirrors the docker CLI's ``formatter`` package: a format is
``table`` (the command's default columns), ``json`` (one JSON object a line),
``table <template>`` (a header row derived from the template, then aligned
rows) or a bare template (one rendered row a line). Column alignment is Go's
``text/tabwriter`` with docker's settings (min width 10, padding 3).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TextIO

from ..util.units import human_duration
from .gotemplate import HEADER_FUNCS, NO_VALUE, NilMap, NilSlice, Template, go_json

TABLE = "table"
JSON = "json"


class Context:
    """A row for the formatter, like docker's ``formatter.SubContext``.

    Subclasses list their fields in ``HEADERS`` (field -> column header) and
    implement each field as a method of the same name.
    """

    HEADERS: Mapping[str, str] = {}
    METHODS: Mapping[str, int] = {}  # methods taking arguments (``Label``): name -> argument count
    type_name = "*formatter.Context"

    def call(self, name: str, args: list[Any]) -> Any:
        return getattr(self, name)(*args)

    def field(self, name: str) -> Any:
        if name not in self.HEADERS:
            raise KeyError(name)
        return getattr(self, name)()

    def to_json(self) -> Any:
        return {name: self.field(name) for name in sorted(self.HEADERS)}


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's tabwriter (padchar ' ', no flags): tab-terminated cells aligned per column block."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(start: int, end: int) -> None:
        for i in range(start, end):
            cells = lines[i]
            parts = []
            for j, cell in enumerate(cells):
                parts.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(" " * max(0, widths[j] - len(cell)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)


@dataclass
class Format:
    """A ``--format`` value after docker's special names are resolved."""

    source: str

    @property
    def is_table(self) -> bool:
        return self.source.startswith(TABLE)

    def template_text(self) -> str:
        text = self.source
        if self.is_table:
            text = text[len(TABLE):]
        elif text == JSON:
            text = "{{json .}}"
        return text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def write_formatted(out: TextIO, fmt: Format, rows: Iterable[Context], header_ctx: Context) -> None:
    """Render rows as docker's ``formatter.Context.Write`` does; raises TemplateError."""
    tmpl = Template(fmt.template_text())
    body = "".join(tmpl.execute(row) + "\n" for row in rows)
    if fmt.is_table:
        header_data = {k: v for k, v in header_ctx.HEADERS.items()}
        header = tmpl.execute_partial(_HeaderMap(header_data), funcs=HEADER_FUNCS)
        out.write(tabwrite(header + "\n" + body))
    else:
        out.write(body)


class _HeaderMap(dict):  # type: ignore[type-arg]
    """Header pass data: an unknown field prints ``<no value>`` as on docker's header map."""

    # docker's SubHeaderContext.Label: the header of ``{{.Label "com.example.some-key"}}`` is ``some key``
    METHODS = {"Label": 1}

    def __missing__(self, key: str) -> Any:
        return NO_VALUE

    def call(self, name: str, args: list[Any]) -> Any:
        last = str(args[0]).split(".")[-1]
        return last.replace("-", " ").replace("_", " ")


# Fields of the Engine API's inspect types that are Go slices or maps: a null there prints as
# docker's typed structs print it (``[]``, ``map[]``), not as ``<nil>``.
_NIL_SLICES = ("RepoTags", "RepoDigests", "Env", "Cmd", "Entrypoint", "OnBuild", "Shell", "Layers", "Args",
               "Mounts", "Binds", "Links", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "CapAdd", "CapDrop",
               "SecurityOpt", "Devices", "Ulimits", "GroupAdd", "VolumesFrom", "DeviceCgroupRules",
               "DeviceRequests", "MaskedPaths", "ReadonlyPaths", "Aliases", "DNSNames")
_NIL_MAPS = ("Labels", "Volumes", "ExposedPorts", "Data", "Ports", "Networks", "PortBindings", "Tmpfs",
             "StorageOpt", "Sysctls", "Options", "Containers", "DriverOpts", "Status", "Annotations")
INSPECT_NILS: dict[str, Any] = {**{k: NilSlice for k in _NIL_SLICES}, **{k: NilMap for k in _NIL_MAPS}}


def render_template(fmt: str, values: Iterable[Any], missing_key_error: bool = True) -> str:
    """docker inspect's templating: one rendered line per value, from the raw JSON."""
    tmpl = Template(Format(fmt).template_text(), missing_key_error=missing_key_error, typed_nils=INSPECT_NILS)
    return "".join(tmpl.execute(v) + "\n" for v in values)


def indented_json(value: Any) -> str:
    """docker's inspect output: the daemon's JSON re-indented by four (no HTML escaping, as docker's encoder)."""
    return json.dumps(value, indent=4, ensure_ascii=False)


def compact_json(value: Any) -> str:
    """``--format json`` of inspect: the daemon's JSON, compacted, key order kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------- units (go-units)

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _size_unit(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def _g(value: float, precision: int) -> str:
    """Go's ``%.*g``."""
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: ``1.983MB``."""
    value, unit = _size_unit(float(size), 1000.0, _DECIMAL)
    return _g(value, precision) + unit


def bytes_size(size: float) -> str:
    """go-units BytesSize: ``23.54GiB``."""
    value, unit = _size_unit(float(size), 1024.0, _BINARY)
    return _g(value, 4) + unit


def since(ts: float, now: Callable[[], float] | None = None) -> str:
    """``3 years ago``, as docker's CreatedSince columns read."""
    current = now() if now else datetime.datetime.now(datetime.timezone.utc).timestamp()
    return human_duration(current - ts) + " ago"


def truncate_id(image_id: str) -> str:
    """stringid.TruncateID: drop the algorithm, keep 12 characters."""
    _, _, rest = image_id.rpartition(":")
    return rest[:12]


def ellipsis(text: str, width: int) -> str:
    """formatter.Ellipsis: cut to ``width`` characters, the last one being ``…``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[:width - 1] + "…"


__all__ = ["Context", "Format", "write_formatted", "render_template", "indented_json", "tabwrite", "human_size",
           "bytes_size", "human_duration", "since", "truncate_id", "ellipsis", "go_json"]
