"""The container-config flags ``create`` and ``run`` share, turned into a create request as the docker CLI does.

Mirrors the docker CLI's ``container/opts.go``: flags are declared once
(:func:`add_container_flags`), then :func:`create_body` checks their values
with docker's wording (``invalid argument "x" for "-m, --memory" flag: ...``,
exit 125) and builds the ``Config`` / ``HostConfig`` / ``NetworkingConfig``
body of ``POST /containers/create``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .command import UsageError, add_bool
from .common import bytes_flag, duration_ns, int_flag, invalid_flag, ram_in_bytes


def add_container_flags(p: argparse.ArgumentParser) -> None:
    """docker's container create flags (the ones ``run`` and ``create`` have in common)."""
    # -h is --hostname here, as in docker; --help stays (argparse's own conflict resolution frees -h)
    if "-h" in p._option_string_actions:
        p._handle_conflict_resolve(None, [("-h", p._option_string_actions["-h"])])  # type: ignore[arg-type]
    lst = {"action": "append", "default": [], "metavar": "list"}
    p.add_argument("-a", "--attach", **lst, help="Attach to STDIN, STDOUT or STDERR")
    p.add_argument("--add-host", **lst, help="Add a custom host-to-IP mapping (host:ip)")
    p.add_argument("--annotation", **lst, help="Add an annotation to the container")
    p.add_argument("--cap-add", **lst, help="Add Linux capabilities")
    p.add_argument("--cap-drop", **lst, help="Drop Linux capabilities")
    p.add_argument("--cgroup-parent", default="", metavar="string", help="Optional parent cgroup for the container")
    p.add_argument("--cgroupns", default="", metavar="string", help="Cgroup namespace to use (host|private)")
    p.add_argument("--cidfile", default="", metavar="string", help="Write the container ID to the file")
    p.add_argument("-c", "--cpu-shares", default=None, metavar="int", help="CPU shares (relative weight)")
    p.add_argument("--cpu-period", default=None, metavar="int", help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", default=None, metavar="int", help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("--cpus", default=None, metavar="decimal", help="Number of CPUs")
    p.add_argument("--cpuset-cpus", default="", metavar="string", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--cpuset-mems", default="", metavar="string", help="MEMs in which to allow execution (0-3, 0,1)")
    p.add_argument("--device", **lst, help="Add a host device to the container")
    p.add_argument("--dns", **lst, help="Set custom DNS servers")
    p.add_argument("--dns-option", **lst, help="Set DNS options")
    p.add_argument("--dns-search", **lst, help="Set custom DNS search domains")
    p.add_argument("--domainname", default="", metavar="string", help="Container NIS domain name")
    p.add_argument("--entrypoint", default=None, metavar="string", help="Overwrite the default ENTRYPOINT of the image")
    p.add_argument("-e", "--env", **lst, help="Set environment variables")
    p.add_argument("--env-file", **lst, help="Read in a file of environment variables")
    p.add_argument("--expose", **lst, help="Expose a port or a range of ports")
    p.add_argument("--group-add", **lst, help="Add additional groups to join")
    p.add_argument("--health-cmd", default="", metavar="string", help="Command to run to check health")
    p.add_argument("--health-interval", default="0s", metavar="duration", help="Time between running the check")
    p.add_argument("--health-retries", default=None, metavar="int", help="Consecutive failures needed to report unhealthy")
    p.add_argument("--health-start-period", default="0s", metavar="duration",
                   help="Start period for the container to initialize before starting health-retries countdown")
    p.add_argument("--health-timeout", default="0s", metavar="duration", help="Maximum time to allow one check to run")
    add_bool(p, "--no-healthcheck", help="Disable any container-specified HEALTHCHECK")
    p.add_argument("-h", "--hostname", default="", metavar="string", help="Container host name")
    add_bool(p, "--init", help="Run an init inside the container that forwards signals and reaps processes")
    add_bool(p, "-i", "--interactive", help="Keep STDIN open even if not attached")
    p.add_argument("--ipc", default="", metavar="string", help="IPC mode to use")
    p.add_argument("-l", "--label", **lst, help="Set meta data on a container")
    p.add_argument("--label-file", **lst, help="Read in a line delimited file of labels")
    p.add_argument("--log-driver", default="", metavar="string", help="Logging driver for the container")
    p.add_argument("--log-opt", **lst, help="Log driver options")
    p.add_argument("-m", "--memory", default=None, metavar="bytes", help="Memory limit")
    p.add_argument("--memory-reservation", default=None, metavar="bytes", help="Memory soft limit")
    p.add_argument("--memory-swap", default=None, metavar="bytes",
                   help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    p.add_argument("--memory-swappiness", default=None, metavar="int", help="Tune container memory swappiness (0 to 100)")
    p.add_argument("--mount", action="append", default=[], metavar="mount", help="Attach a filesystem mount to the container")
    p.add_argument("--name", default="", metavar="string", help="Assign a name to the container")
    p.add_argument("--network", "--net", default="", metavar="network", help="Connect a container to a network")
    p.add_argument("--network-alias", "--net-alias", **lst, help="Add network-scoped alias for the container")
    add_bool(p, "--oom-kill-disable", help="Disable OOM Killer")
    p.add_argument("--oom-score-adj", default=None, metavar="int", help="Tune host's OOM preferences (-1000 to 1000)")
    p.add_argument("--pid", default="", metavar="string", help="PID namespace to use")
    p.add_argument("--pids-limit", default=None, metavar="int", help="Tune container pids limit (set -1 for unlimited)")
    p.add_argument("--platform", default="", metavar="string", help="Set platform if server is multi-platform capable")
    add_bool(p, "--privileged", help="Give extended privileges to this container")
    p.add_argument("-p", "--publish", **lst, help="Publish a container's port(s) to the host")
    add_bool(p, "-P", "--publish-all", help="Publish all exposed ports to random ports")
    p.add_argument("--pull", default="missing", metavar="string",
                   help='Pull image before running ("always", "missing", "never")')
    add_bool(p, "-q", "--quiet", help="Suppress the pull output")
    add_bool(p, "--read-only", help="Mount the container's root filesystem as read only")
    p.add_argument("--restart", default="no", metavar="string", help="Restart policy to apply when a container exits")
    add_bool(p, "--rm", help="Automatically remove the container and its associated anonymous volumes when it exits")
    p.add_argument("--runtime", default="", metavar="string", help="Runtime to use for this container")
    p.add_argument("--security-opt", **lst, help="Security Options")
    p.add_argument("--shm-size", default=None, metavar="bytes", help="Size of /dev/shm")
    p.add_argument("--stop-signal", default="", metavar="string", help="Signal to stop the container")
    p.add_argument("--stop-timeout", default=None, metavar="int", help="Timeout (in seconds) to stop a container")
    p.add_argument("--storage-opt", **lst, help="Storage driver options for the container")
    p.add_argument("--sysctl", **lst, help="Sysctl options")
    p.add_argument("--tmpfs", **lst, help="Mount a tmpfs directory")
    add_bool(p, "-t", "--tty", help="Allocate a pseudo-TTY")
    p.add_argument("--ulimit", **lst, help="Ulimit options")
    p.add_argument("-u", "--user", default="", metavar="string", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("--userns", default="", metavar="string", help="User namespace to use")
    p.add_argument("--uts", default="", metavar="string", help="UTS namespace to use")
    p.add_argument("-v", "--volume", **lst, help="Bind mount a volume")
    p.add_argument("--volumes-from", **lst, help="Mount volumes from the specified container(s)")
    p.add_argument("-w", "--workdir", default="", metavar="string", help="Working directory inside the container")


def _duration(parser: argparse.ArgumentParser, value: str, flag: str) -> int:
    try:
        return duration_ns(value)
    except ValueError as e:
        raise invalid_flag(parser, value, flag, str(e)) from None


def _read_lines(parser: argparse.ArgumentParser, path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"open {path}: {(e.strerror or str(e)).lower()}", parser) from None  # type: ignore[arg-type]
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _env_item(item: str) -> str | None:
    """``KEY=v`` as is; a bare ``KEY`` takes the caller's value, or is dropped when unset."""
    if "=" in item:
        return item
    return f"{item}={os.environ[item]}" if item in os.environ else None


def parse_port_spec(spec: str) -> list[tuple[str, str, str]]:
    """``[ip:][hostPort:]containerPort[/proto]`` (ranges allowed) → (container "80/tcp", host ip, host port)."""
    port, _, proto = spec.partition("/")
    proto = proto or "tcp"
    ip = host = ""
    if port.startswith("["):  # [::1]:8080:80
        end = port.index("]")
        ip, port = port[1:end], port[end + 2:]
        host, _, cport = port.rpartition(":")
    else:
        parts = port.split(":")
        if len(parts) == 1:
            cport = parts[0]
        elif len(parts) == 2:
            host, cport = parts
        elif len(parts) == 3:
            ip, host, cport = parts
        else:
            raise ValueError(f"invalid port format: {spec}")
    if not cport:
        raise ValueError(f"no port specified: {spec}<empty>")

    def span(text: str) -> list[int]:
        lo, _, hi = text.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"invalid containerPort: {text}")
        a, b = int(lo), int(hi or lo)
        return list(range(a, b + 1))

    cports = span(cport)
    hports = span(host) if host else []
    if hports and len(hports) != len(cports) and len(hports) != 1:
        raise ValueError(f"invalid ranges specified for container and host Ports: {cport} and {host}")
    out = []
    for i, c in enumerate(cports):
        h = str(hports[i]) if len(hports) == len(cports) else (host if hports else "")
        out.append((f"{c}/{proto}", ip, h))
    return out


def _restart(parser: argparse.ArgumentParser, value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                         "'on-failure', or 'unless-stopped'", parser)  # type: ignore[arg-type]
    policy: dict[str, Any] = {"Name": name}
    if count:
        if not count.isdigit():
            raise UsageError(f"invalid restart policy format: maximum retry count must be an integer: "
                             f"strconv.Atoi: parsing \"{count}\": invalid syntax", parser)  # type: ignore[arg-type]
        policy["MaximumRetryCount"] = int(count)
    return policy


def _ulimit(parser: argparse.ArgumentParser, value: str) -> dict[str, Any]:
    name, sep, limits = value.partition("=")
    if not sep:
        raise invalid_flag(parser, value, "--ulimit", f"invalid ulimit argument: {value}")
    soft, _, hard = limits.partition(":")
    try:
        s = int(soft)
        h = int(hard) if hard else s
    except ValueError:
        raise invalid_flag(parser, value, "--ulimit", f"invalid ulimit argument: {value}") from None
    return {"Name": name, "Soft": s, "Hard": h}


def _mount(parser: argparse.ArgumentParser, spec: str) -> dict[str, Any]:
    """``--mount type=bind,source=/a,target=/b,readonly``: the API's Mount object."""
    mount: dict[str, Any] = {"Type": "volume"}
    for field in spec.split(","):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "destination", "dst"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = not sep or value.lower() in ("1", "true")
        elif key == "bind-propagation":
            mount.setdefault("BindOptions", {})["Propagation"] = value
        elif key == "volume-nocopy":
            mount.setdefault("VolumeOptions", {})["NoCopy"] = not sep or value.lower() in ("1", "true")
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
        else:
            raise invalid_flag(parser, spec, "--mount", f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise invalid_flag(parser, spec, "--mount", "target is required")
    return mount


def create_body(ns: argparse.Namespace, image: str, command: list[str]) -> dict[str, Any]:
    """The ``POST /containers/create`` body for these flags, image and command."""
    p: argparse.ArgumentParser = ns.command_parser
    env: list[str] = []
    for path in ns.env_file:
        env.extend(x for x in map(_env_item, _read_lines(p, path)) if x is not None)
    env.extend(x for x in map(_env_item, ns.env) if x is not None)
    labels: dict[str, str] = {}
    for path in ns.label_file:
        for line in _read_lines(p, path):
            k, _, v = line.partition("=")
            labels[k] = v
    for item in ns.label:
        k, _, v = item.partition("=")
        labels[k] = v

    attach = [a.lower() for a in ns.attach]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise invalid_flag(p, a, "-a, --attach", "valid streams are STDIN, STDOUT and STDERR")
    detach = getattr(ns, "detach", False)
    if detach and attach:
        raise UsageError("conflicting options: cannot specify both --attach and --detach", p)  # type: ignore[arg-type]
    if not attach and not detach:
        attach = ["stdout", "stderr"] + (["stdin"] if ns.interactive else [])

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in ns.publish:
        try:
            for cport, ip, host in parse_port_spec(spec):
                exposed[cport] = {}
                bindings.setdefault(cport, []).append({"HostIp": ip, "HostPort": host})
        except ValueError as e:
            raise invalid_flag(p, spec, "-p, --publish", str(e)) from None
    for spec in ns.expose:
        port, _, proto = spec.partition("/")
        lo, _, hi = port.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise invalid_flag(p, spec, "--expose", f"invalid range format for --expose: {spec}")
        for n in range(int(lo), int(hi or lo) + 1):
            exposed[f"{n}/{proto or 'tcp'}"] = {}

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in ns.volume:
        # an anonymous volume is just a container path; anything with a source is a bind or named volume
        if ":" in spec:
            binds.append(spec)
        else:
            volumes[spec] = {}

    tmpfs: dict[str, str] = {}
    for spec in ns.tmpfs:
        path, _, opts = spec.partition(":")
        tmpfs[path] = opts

    healthcheck: dict[str, Any] | None = None
    if ns.no_healthcheck:
        healthcheck = {"Test": ["NONE"]}
    elif ns.health_cmd or ns.health_retries or ns.health_interval != "0s" or ns.health_timeout != "0s" \
            or ns.health_start_period != "0s":
        healthcheck = {"Interval": _duration(p, ns.health_interval, "--health-interval"),
                       "Timeout": _duration(p, ns.health_timeout, "--health-timeout"),
                       "StartPeriod": _duration(p, ns.health_start_period, "--health-start-period"),
                       "Retries": int_flag(p, ns.health_retries, "--health-retries") or 0}
        if ns.health_cmd:
            healthcheck["Test"] = ["CMD-SHELL", ns.health_cmd]

    nano_cpus = None
    if ns.cpus is not None:
        try:
            nano_cpus = int(round(float(ns.cpus) * 1e9))
        except ValueError:
            raise invalid_flag(p, ns.cpus, "--cpus", "failed to parse " + ns.cpus + " as a rational number") from None

    sysctls = {}
    for item in ns.sysctl:
        k, sep, v = item.partition("=")
        if not sep:
            raise invalid_flag(p, item, "--sysctl", f"sysctl '{item}' is not allowed")
        sysctls[k] = v

    log_opts = {}
    for item in ns.log_opt:
        k, _, v = item.partition("=")
        log_opts[k] = v

    network = ns.network or "default"
    security_opts, system_paths = _security_opts(p, ns.security_opt)
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": ns.cidfile,
        "LogConfig": {"Type": ns.log_driver, "Config": log_opts},
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": _restart(p, ns.restart),
        "AutoRemove": ns.rm,
        "VolumeDriver": "",
        "VolumesFrom": ns.volumes_from or None,
        "CapAdd": ns.cap_add or None,
        "CapDrop": ns.cap_drop or None,
        "CgroupnsMode": ns.cgroupns,
        "Dns": ns.dns,
        "DnsOptions": ns.dns_option,
        "DnsSearch": ns.dns_search,
        "ExtraHosts": ns.add_host or None,
        "GroupAdd": ns.group_add or None,
        "IpcMode": ns.ipc,
        "Cgroup": "",
        "OomScoreAdj": int_flag(p, ns.oom_score_adj, "--oom-score-adj") or 0,
        "PidMode": ns.pid,
        "Privileged": ns.privileged,
        "PublishAllPorts": ns.publish_all,
        "ReadonlyRootfs": ns.read_only,
        "SecurityOpt": security_opts or None,
        "StorageOpt": dict(x.partition("=")[::2] for x in ns.storage_opt) or None,
        "Tmpfs": tmpfs or None,
        "UTSMode": ns.uts,
        "UsernsMode": ns.userns,
        "ShmSize": bytes_flag(p, ns.shm_size, "--shm-size") or 0,
        "Sysctls": sysctls or None,
        "Runtime": ns.runtime,
        "Init": True if ns.init else None,
        "CgroupParent": ns.cgroup_parent,
        "CpuShares": int_flag(p, ns.cpu_shares, "-c, --cpu-shares") or 0,
        "Memory": bytes_flag(p, ns.memory, "-m, --memory") or 0,
        "NanoCpus": nano_cpus or 0,
        "CpuPeriod": int_flag(p, ns.cpu_period, "--cpu-period") or 0,
        "CpuQuota": int_flag(p, ns.cpu_quota, "--cpu-quota") or 0,
        "CpusetCpus": ns.cpuset_cpus,
        "CpusetMems": ns.cpuset_mems,
        "Devices": [_device(d) for d in ns.device],
        "MemoryReservation": bytes_flag(p, ns.memory_reservation, "--memory-reservation") or 0,
        "MemorySwap": bytes_flag(p, ns.memory_swap, "--memory-swap", allow_minus_one=True) or 0,
        "MemorySwappiness": int_flag(p, ns.memory_swappiness, "--memory-swappiness"),
        "OomKillDisable": ns.oom_kill_disable,
        "PidsLimit": int_flag(p, ns.pids_limit, "--pids-limit"),
        "Ulimits": [_ulimit(p, u) for u in ns.ulimit] or None,
        "Mounts": [_mount(p, m) for m in ns.mount] or None,
        "Annotations": dict(x.partition("=")[::2] for x in ns.annotation) or None,
        **system_paths,
    }
    entrypoint: list[str] | None = None
    if ns.entrypoint is not None:
        entrypoint = [ns.entrypoint] if ns.entrypoint else [""]
    config: dict[str, Any] = {
        "Hostname": ns.hostname,
        "Domainname": ns.domainname,
        "User": ns.user,
        "AttachStdin": "stdin" in attach,
        "AttachStdout": "stdout" in attach,
        "AttachStderr": "stderr" in attach,
        "ExposedPorts": exposed or None,
        "Tty": ns.tty,
        "OpenStdin": ns.interactive,
        "StdinOnce": ns.interactive and "stdin" in attach,
        "Env": env,
        "Cmd": command or None,
        "Healthcheck": healthcheck,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": ns.workdir,
        "Entrypoint": entrypoint,
        "Labels": labels,
        "StopSignal": ns.stop_signal or None,
        "StopTimeout": int_flag(p, ns.stop_timeout, "--stop-timeout"),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": _endpoints(network, ns.network_alias)},
    }
    return {k: v for k, v in config.items() if v is not None}


def _security_opts(parser: argparse.ArgumentParser, opts: list[str]) -> tuple[list[str], dict[str, Any]]:
    """As the docker CLI's parseSecurityOpts/parseSystemPaths: a seccomp profile travels as its compact
    JSON (the daemon cannot read the client's files), ``systempaths=unconfined`` as empty path lists."""
    out: list[str] = []
    paths: dict[str, Any] = {}
    for opt in opts:
        if opt == "systempaths=unconfined":
            paths = {"MaskedPaths": [], "ReadonlyPaths": []}
            continue
        key, sep, value = opt.partition("=")
        if not sep and ":" in opt:
            key, sep, value = opt.partition(":")
        if key == "seccomp" and value not in ("unconfined", "builtin", ""):
            try:
                with open(value, "rb") as f:
                    profile = json.loads(f.read())
            except OSError as e:
                raise UsageError.run_error(f"opening seccomp profile ({value}) failed: open {value}: "
                                           f"{(e.strerror or str(e)).lower()}", parser) from None  # type: ignore[arg-type]
            except ValueError as e:
                raise UsageError.run_error(f"compacting json for seccomp profile ({value}) failed: {e}",
                                           parser) from None  # type: ignore[arg-type]
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(opt)
    return out, paths


def _device(spec: str) -> dict[str, str]:
    parts = spec.split(":")
    host = parts[0]
    inner = parts[1] if len(parts) > 1 and not set(parts[1]) <= set("rwm") else host
    perms = parts[-1] if len(parts) > 1 and set(parts[-1]) <= set("rwm") else "rwm"
    return {"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms}


def _endpoints(network: str, aliases: list[str]) -> dict[str, Any]:
    if network in ("default", "", "host", "none") or network.startswith("container:"):
        return {}
    return {network: {"Aliases": aliases or None}}
