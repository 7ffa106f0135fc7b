"""System commands: version, info, system df, events."""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import time
from typing import Any

import docker
from docker.constants import DEFAULT_DOCKER_API_VERSION

from ..util import timefmt
from .. import __version__
from ..util import host
from .command import Arity, Cli, CliError, CommandTree, add_bool, add_filter_flag, add_format_flag, filters_from
from .connection import ConnectionError_, cannot_connect
from .gotemplate import Template
from .images import ImageContext
from .output import Context, Format, bytes_size, ellipsis, human_size, since, tabwrite, truncate_id, write_formatted
from .structview import StructView


# ---------------------------------------------------------------- version

VERSION_TEMPLATE = """{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:\t{{$value}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"""

CLIENT_ALIASES = {"APIVersion": "ApiVersion"}
SERVER_ALIASES = {"APIVersion": "ApiVersion"}


def _ansic(iso: str) -> str:
    """docker reformats build times to Go's time.ANSIC: ``Mon Jan  2 15:04:05 2006``."""
    try:
        t = datetime.datetime.fromtimestamp(timefmt.parse_seconds(iso), datetime.timezone.utc)
    except ValueError:
        return iso
    return t.strftime("%a %b ") + f"{t.day:2d}" + t.strftime(" %H:%M:%S %Y")


def cmd_version(cli: Cli, ns: argparse.Namespace) -> int:
    client_info: dict[str, Any] = {
        "Platform": {"Name": ""},
        "Version": __version__,
        "ApiVersion": DEFAULT_DOCKER_API_VERSION,
        "DefaultAPIVersion": DEFAULT_DOCKER_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": host.go_arch(),
        "BuildTime": "",
        "Context": "default",
    }
    server: dict[str, Any] | None = None
    problem = ""
    try:
        client = cli.client
        server = client.version()
        client_info["ApiVersion"] = client.api.api_version
        server["BuildTime"] = _ansic(server.get("BuildTime", ""))
        for comp in server.get("Components") or []:
            details = comp.get("Details") or {}
            if "BuildTime" in details:
                details["BuildTime"] = _ansic(details["BuildTime"])
    except (ConnectionError_, docker.errors.DockerException) as e:
        problem = str(e) if isinstance(e, ConnectionError_) else cannot_connect(cli.host, e)
    data = {"Client": StructView(client_info, "*command.clientVersion", CLIENT_ALIASES, {"Platform": ("", {})}),
            "Server": StructView(server, "*types.Version", SERVER_ALIASES, {"Platform": ("", {})})
            if server is not None else None,
            "ServerOK": server is not None}
    fmt = ns.format
    if fmt:
        text = Template(Format(fmt).template_text()).execute(
            StructView({k: v for k, v in data.items()}, "types.VersionResponse")) + "\n"
        cli.out.write(text)
    else:
        cli.out.write(tabwrite(Template(VERSION_TEMPLATE).execute(data) + "\n", minwidth=20, padding=1))
    if problem:
        raise CliError(problem)
    return 0


# ---------------------------------------------------------------- info

# system.Info fields that are Go maps (sorted when marshalled), the rest of its objects being structs
INFO_MAPS = frozenset({"Runtimes", "IndexConfigs", "Attributes", "Labels", "Options", "Data"})

def cmd_info(cli: Cli, ns: argparse.Namespace) -> int:
    info = cli.client.info()
    if ns.format:
        data = dict(info)
        data["ClientInfo"] = {"Debug": False, "Context": "default", "Plugins": [], "Warnings": None}
        cli.out.write(Template(Format(ns.format).template_text()).execute(
            StructView(data, "info.dockerInfo", maps=INFO_MAPS)) + "\n")
        return 0
    out: list[str] = ["Client:", f" Version:    {__version__}", " Context:    default", " Debug Mode: false", "",
                      "Server:"]
    add = out.append
    add(f" Containers: {info.get('Containers', 0)}")
    add(f"  Running: {info.get('ContainersRunning', 0)}")
    add(f"  Paused: {info.get('ContainersPaused', 0)}")
    add(f"  Stopped: {info.get('ContainersStopped', 0)}")
    add(f" Images: {info.get('Images', 0)}")
    add(f" Server Version: {info.get('ServerVersion', '')}")
    add(f" Storage Driver: {info.get('Driver', '')}")
    for pair in info.get("DriverStatus") or []:
        add(f"  {pair[0]}: {pair[1]}")
    add(f" Logging Driver: {info.get('LoggingDriver', '')}")
    add(f" Cgroup Driver: {info.get('CgroupDriver', '')}")
    add(f" Cgroup Version: {info.get('CgroupVersion', '')}")
    plugins = info.get("Plugins") or {}
    add(" Plugins:")
    for kind in ("Volume", "Network", "Authorization", "Log"):
        if plugins.get(kind):
            add(f"  {kind}: {' '.join(plugins[kind])}")
    add(f" Swarm: {(info.get('Swarm') or {}).get('LocalNodeState', 'inactive')}")
    add(f" Runtimes: {' '.join(sorted(info.get('Runtimes') or {}))}")
    add(f" Default Runtime: {info.get('DefaultRuntime', '')}")
    add(f" Init Binary: {info.get('InitBinary', '')}")
    add(f" containerd version: {(info.get('ContainerdCommit') or {}).get('ID', '')}")
    add(f" runc version: {(info.get('RuncCommit') or {}).get('ID', '')}")
    add(f" init version: {(info.get('InitCommit') or {}).get('ID', '')}")
    if info.get("SecurityOptions"):
        add(" Security Options:")
        for opt in info["SecurityOptions"]:
            fields = dict(kv.partition("=")[::2] for kv in opt.split(","))
            add(f"  {fields.pop('name', opt)}")
            for key, value in fields.items():
                add(f"   {key.capitalize()}: {value}")
    add(f" Kernel Version: {info.get('KernelVersion', '')}")
    add(f" Operating System: {info.get('OperatingSystem', '')}")
    add(f" OSType: {info.get('OSType', '')}")
    add(f" Architecture: {info.get('Architecture', '')}")
    add(f" CPUs: {info.get('NCPU', 0)}")
    add(f" Total Memory: {bytes_size(info.get('MemTotal', 0))}")
    add(f" Name: {info.get('Name', '')}")
    add(f" ID: {info.get('ID', '')}")
    add(f" Docker Root Dir: {info.get('DockerRootDir', '')}")
    add(f" Debug Mode: {'true' if info.get('Debug') else 'false'}")
    if info.get("Debug"):
        add(f"  File Descriptors: {info.get('NFd', 0)}")
        add(f"  Goroutines: {info.get('NGoroutines', 0)}")
        add(f"  System Time: {info.get('SystemTime', '')}")
        add(f"  EventsListeners: {info.get('NEventsListener', 0)}")
    for key, label in (("HttpProxy", "HTTP Proxy"), ("HttpsProxy", "HTTPS Proxy"), ("NoProxy", "No Proxy")):
        if info.get(key):
            add(f" {label}: {info[key]}")
    if info.get("Labels"):
        add(" Labels:")
        out.extend(f"  {label}" for label in info["Labels"])
    add(f" Experimental: {'true' if info.get('ExperimentalBuild') else 'false'}")
    registry = info.get("RegistryConfig") or {}
    insecure = [name for name, idx in sorted((registry.get("IndexConfigs") or {}).items())
                if not idx.get("Secure", True)] + list(registry.get("InsecureRegistryCIDRs") or [])
    if insecure:
        add(" Insecure Registries:")
        out.extend(f"  {r}" for r in insecure)
    if registry.get("Mirrors"):
        add(" Registry Mirrors:")
        out.extend(f"  {m}" for m in registry["Mirrors"])
    add(f" Live Restore Enabled: {'true' if info.get('LiveRestoreEnabled') else 'false'}")
    cli.out.write("\n".join(out) + "\n\n")
    for warning in info.get("Warnings") or []:
        cli.err.write(warning + "\n")
    return 0


# ---------------------------------------------------------------- system df

def _percent(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


class DiskUsageContext(Context):
    """One row of ``docker system df`` (docker's ``diskUsage*Context``)."""

    HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
               "Reclaimable": "RECLAIMABLE"}
    type_name = "*formatter.diskUsageImagesContext"

    def __init__(self, kind: str = "", total: int = 0, active: int = 0, size: int = 0, reclaimable: str = "") -> None:
        self.kind, self.total, self.active, self.size, self.reclaimable = kind, total, active, size, reclaimable

    def Type(self) -> str:
        return self.kind

    def TotalCount(self) -> str:
        return str(self.total)

    def Active(self) -> str:
        return str(self.active)

    def Size(self) -> str:
        return human_size(self.size)

    def Reclaimable(self) -> str:
        return self.reclaimable


def df_rows(du: dict[str, Any]) -> list[DiskUsageContext]:
    images = du.get("Images") or []
    layers = du.get("LayersSize") or 0
    used = sum(i.get("Size", 0) - i.get("SharedSize", 0) for i in images
               if i.get("Containers", 0) not in (0,) and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1)
    containers = du.get("Containers") or []
    active_c = [c for c in containers if c.get("State") in ("running", "paused", "restarting")]
    c_size = sum(c.get("SizeRw") or 0 for c in containers)
    c_reclaim = sum(c.get("SizeRw") or 0 for c in containers if c not in active_c)
    volumes = du.get("Volumes") or []

    def vusage(v: dict[str, Any]) -> dict[str, Any]:
        return v.get("UsageData") or {}

    v_size = sum(vusage(v).get("Size", 0) for v in volumes if vusage(v).get("Size", -1) != -1)
    v_reclaim = sum(vusage(v).get("Size", 0) for v in volumes
                    if vusage(v).get("Size", -1) != -1 and vusage(v).get("RefCount", 0) == 0)
    cache = du.get("BuildCache") or []
    b_size = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    b_inuse = sum(b.get("Size", 0) for b in cache if b.get("InUse") and not b.get("Shared"))
    return [
        DiskUsageContext("Images", len(images), sum(1 for i in images if i.get("Containers", 0) > 0), layers,
                         _percent(layers - used, layers)),
        DiskUsageContext("Containers", len(containers), len(active_c), c_size, _percent(c_reclaim, c_size)),
        DiskUsageContext("Local Volumes", len(volumes), sum(1 for v in volumes if vusage(v).get("RefCount", 0) > 0),
                         v_size, _percent(v_reclaim, v_size)),
        DiskUsageContext("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")), b_size,
                         human_size(b_size - b_inuse)),
    ]


DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_IMAGES = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}" \
            "\t{{.UniqueSize}}\t{{.Containers}}"
DF_VOLUMES = "table {{.Name}}\t{{.Links}}\t{{.Size}}"


class DfVolumeContext(Context):
    HEADERS = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
    type_name = "*formatter.volumeContext"

    def __init__(self, v: dict[str, Any] | None = None) -> None:
        self.v = v or {}

    def Name(self) -> str:
        return self.v.get("Name", "")

    def Links(self) -> str:
        n = (self.v.get("UsageData") or {}).get("RefCount", -1)
        return "N/A" if n == -1 else str(n)

    def Size(self) -> str:
        n = (self.v.get("UsageData") or {}).get("Size", -1)
        return "N/A" if n == -1 else human_size(n)


class DfContainerContext(Context):
    HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
               "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}
    type_name = "*formatter.ContainerContext"

    def __init__(self, c: dict[str, Any] | None = None) -> None:
        self.c = c or {}

    def ID(self) -> str:
        return truncate_id(self.c.get("Id", ""))

    def Image(self) -> str:
        image = self.c.get("Image", "")
        return truncate_id(image) if image.startswith("sha256:") else image

    def Command(self) -> str:
        return '"' + ellipsis(self.c.get("Command", ""), 20) + '"'

    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    def Size(self) -> str:
        return human_size(self.c.get("SizeRw") or 0)

    def RunningFor(self) -> str:
        return since(self.c.get("Created", 0))

    def Status(self) -> str:
        return self.c.get("Status", "")

    def Names(self) -> str:
        return ",".join(n.lstrip("/") for n in self.c.get("Names") or [])


DF_CONTAINERS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}" \
                      "\t{{.Status}}\t{{.Names}}"
DF_CACHE_HEADER = "CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED"


def cmd_df(cli: Cli, ns: argparse.Namespace) -> None:
    du = cli.client.api.df()
    if not ns.verbose:
        source = ns.format or "table"
        write_formatted(cli.out, Format(DF_TABLE if source == "table" else source), df_rows(du), DiskUsageContext())
        return
    if ns.format:
        # docker renders a format given with -v once, over the whole report, without a newline
        cli.out.write(Template(Format(ns.format).template_text()).execute(StructView(du, "types.DiskUsage")))
        return
    out = cli.out
    out.write("Images space usage:\n\n")
    rows = []
    for img in du.get("Images") or []:
        repo, tag = "<none>", "<none>"
        tags = img.get("RepoTags") or []
        if tags and tags != ["<none>:<none>"]:
            name, _, t = tags[0].rpartition(":")
            if "/" in t:
                name, t = tags[0], "latest"
            repo, tag = name, t
        rows.append(ImageContext(img, repo, tag, ""))
    write_formatted(out, Format(DF_IMAGES), rows, ImageContext())
    out.write("\nContainers space usage:\n\n")
    write_formatted(out, Format(DF_CONTAINERS_TABLE), [DfContainerContext(c) for c in du.get("Containers") or []],
                    DfContainerContext())
    out.write("\nLocal Volumes space usage:\n\n")
    write_formatted(out, Format(DF_VOLUMES), [DfVolumeContext(v) for v in du.get("Volumes") or []],
                    DfVolumeContext())
    cache = du.get("BuildCache") or []
    total = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    out.write(f"\nBuild cache usage: {human_size(total)}\n\n")
    out.write(DF_CACHE_HEADER + "\n")
    for b in cache:
        out.write(tabwrite(f"{b.get('ID', '')[:12]}\t{b.get('Type', '')}\t{human_size(b.get('Size', 0))}\t"
                           f"{since(timefmt.parse_seconds(b.get('CreatedAt', '')))}\t"
                           f"{since(timefmt.parse_seconds(b.get('LastUsedAt', ''))) if b.get('LastUsedAt') else ''}\t"
                           f"{b.get('UsageCount', 0)}\t{'true' if b.get('Shared') else 'false'}\n"))


# ---------------------------------------------------------------- events

EVENT_ALIASES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope", "Time": "time",
                 "TimeNano": "timeNano"}


def event_struct(ev: dict[str, Any]) -> dict[str, Any]:
    """The event in events.Message's field order (as ``{{json .}}`` marshals it), empty legacy fields left out."""
    out: dict[str, Any] = {k: ev[k] for k in ("status", "id", "from") if ev.get(k)}
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    out.update({"Type": ev.get("Type", ""), "Action": ev.get("Action", ""),
                "Actor": {"ID": actor.get("ID", ""), "Attributes": {k: attrs[k] for k in sorted(attrs)}},
                "scope": ev.get("scope", ""), "time": ev.get("time", 0), "timeNano": ev.get("timeNano", 0)})
    return out

_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_go_duration(text: str) -> int | None:
    """Go's time.ParseDuration in nanoseconds, or None when ``text`` is not a duration."""
    sign = 1
    body = text
    if body[:1] in "+-":
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    if body == "0":
        return 0
    if not body:
        return None
    total, pos = 0.0, 0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(body):
        return None
    return sign * int(total)


def get_timestamp(value: str, now: float | None = None) -> str:
    """docker's timetypes.GetTimestamp: durations are taken back from now; dates become Unix seconds."""
    now = time.time() if now is None else now
    d = parse_go_duration(value)
    if value != "0" and d is not None:
        return str(int(now - d / 1e9))
    in_location = not (any(c in value for c in "zZ+") or value.count("-") == 3)
    try:
        t = _parse_date(value, in_location)
    except ValueError:
        if "-" in value:
            raise CliError(f'parsing time "{value}": cannot parse as a timestamp') from None
        if not re.fullmatch(r"\d+(\.\d+)?", value):
            raise CliError(f'failed to parse value as time or duration: "{value}"') from None
        return value
    return f"{int(t.timestamp())}.{t.microsecond * 1000:09d}"


def _parse_date(value: str, in_location: bool) -> datetime.datetime:
    text = value
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "T" in text:
        date, _, rest = text.partition("T")
        zone = ""
        m = re.search(r"[+-]\d\d:\d\d$", rest)
        if m:
            rest, zone = rest[:m.start()], m.group()
        parts = rest.split(":")
        while len(parts) < 3:
            parts.append("00")
        text = f"{date}T{':'.join(parts)}{zone}"
    elif re.fullmatch(r"\d{4}-\d\d-\d\d([+-]\d\d:\d\d)?", text):
        zone = text[10:]
        text = f"{text[:10]}T00:00:00{zone}"
    else:
        raise ValueError(value)
    t = datetime.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.astimezone() if in_location else t.replace(tzinfo=datetime.timezone.utc)
    return t


def event_line(ev: dict[str, Any]) -> str:
    """docker's prettyPrintEvent."""
    if ev.get("timeNano"):
        head = timefmt.rfc3339_nano_fixed_local(int(ev["timeNano"])) + " "
    elif ev.get("time"):
        head = timefmt.rfc3339_nano_fixed_local(int(ev["time"]) * 1_000_000_000) + " "
    else:
        head = ""
    actor = ev.get("Actor") or {}
    line = f"{head}{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def cmd_events(cli: Cli, ns: argparse.Namespace) -> int:
    filters = filters_from(ns.filter, ns.command_parser)
    since_ts = get_timestamp(ns.since) if ns.since else None
    until_ts = get_timestamp(ns.until) if ns.until else None
    tmpl = Template(Format(ns.format).template_text()) if ns.format else None
    stream = cli.client.api.events(since=since_ts, until=until_ts, filters=filters or None, decode=True)
    try:
        for ev in stream:
            if tmpl is None:
                cli.out.write(event_line(ev))
            else:
                view = StructView(event_struct(ev), "events.Message", EVENT_ALIASES, {"Actor": ("events.Actor", {})},
                                  maps=frozenset({"Attributes"}))
                cli.out.write(tmpl.execute(view) + "\n")
            cli.out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        stream.close()
    return 0


# ---------------------------------------------------------------- registration

def _version_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="string", help="Format output using a custom template")


def _df_flags(p: argparse.ArgumentParser) -> None:
    add_format_flag(p)
    add_bool(p, "-v", "--verbose", help="Show detailed information on space usage")


def _events_flags(p: argparse.ArgumentParser) -> None:
    add_filter_flag(p, "Filter output based on conditions provided")
    add_format_flag(p)
    p.add_argument("--since", default="", metavar="string", help="Show all events created since timestamp")
    p.add_argument("--until", default="", metavar="string", help="Stream events until this timestamp")


def register(tree: CommandTree) -> None:
    tree.group("system", "Manage Docker")
    tree.add(["version"], "[OPTIONS]", "Show the Docker version information", cmd_version, _version_flags,
             Arity(0, 0))
    tree.add(["info", "system info"], "[OPTIONS]", "Display system-wide information", cmd_info, _version_flags,
             Arity(0, 0))
    tree.add(["system df"], "[OPTIONS]", "Show docker disk usage", cmd_df, _df_flags, Arity(0, 0))
    tree.add(["events", "system events"], "[OPTIONS]", "Get real time events from the server", cmd_events,
             _events_flags, Arity(0, 0))
