"""dockyardd's configuration: dockerd's flags and daemon.json keys where they overlap."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from typing import Any

from .. import errors
from ..config import (DEFAULT_CONFIG_FILE, DEFAULT_HOST, LOG_DRIVERS, LOG_LEVELS, STORAGE_DRIVERS, ConfigError,
                      DaemonConfig)
from ..containers import jsonlog
from ..cri.streaming.server import parse_address as parse_stream_address
from ..cri.streaming.server import parse_idle_timeout as parse_stream_idle_timeout
from ..runtime import cgroupdriver

# daemon.json key -> (attribute, type check)
_KEYS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "hosts": ("hosts", list),
    "data-root": ("data_root", str),
    "exec-root": ("exec_root", str),
    "pidfile": ("pidfile", str),
    "log-level": ("log_level", str),
    "debug": ("debug", bool),
    "storage-driver": ("storage_driver", str),
    "default-runtime": ("default_runtime", str),
    "runtimes": ("runtimes", dict),
    "insecure-registries": ("insecure_registries", list),
    "registry-mirrors": ("registry_mirrors", list),
    "registry-config-dir": ("registry_config_dir", str),
    "max-concurrent-downloads": ("max_concurrent_downloads", int),
    "max-concurrent-uploads": ("max_concurrent_uploads", int),
    "bip": ("bip", str),
    "bridge": ("bridge_name", str),
    "default-address-pools": ("default_address_pools", list),
    "iptables": ("iptables", bool),
    "ipv6": ("ipv6", bool),
    "fixed-cidr-v6": ("fixed_cidr_v6", str),
    "ip6tables": ("ip6tables", bool),
    "userland-proxy": ("userland_proxy", bool),
    "live-restore": ("live_restore", bool),
    "log-driver": ("log_driver", str),
    "log-opts": ("log_opts", dict),
    "group": ("group", str),
    "tls": ("tls", bool),
    "tlsverify": ("tlsverify", bool),
    "tlscacert": ("tlscacert", str),
    "tlscert": ("tlscert", str),
    "tlskey": ("tlskey", str),
    "api-cors-header": ("api_cors_header", str),
    "exec-opts": ("exec_opts", list),
    "builder": ("builder", dict),
    "cri-socket": ("cri_socket", str),
    "cri-stream-address": ("cri_stream_address", str),
    "cri-stream-idle-timeout": ("cri_stream_idle_timeout", str),
    "cni-conf-dir": ("cni_conf_dir", str),
    "cni-bin-dirs": ("cni_bin_dirs", list),
    "sandbox-image": ("sandbox_image", str),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyardd", description="A Docker-Engine-compatible container engine")
    # Every option defaults to None so that "given on the command line" is knowable,
    # which dockerd's conflict check between flags and daemon.json needs.
    p.add_argument("-H", "--host", dest="hosts", action="append", help="daemon socket(s) to listen on")
    p.add_argument("--data-root", dest="data_root")
    p.add_argument("--exec-root", dest="exec_root")
    p.add_argument("-p", "--pidfile", dest="pidfile")
    p.add_argument("--config-file", dest="config_file")
    p.add_argument("-l", "--log-level", dest="log_level", choices=LOG_LEVELS)
    p.add_argument("-D", "--debug", dest="debug", action="store_const", const=True)
    p.add_argument("-s", "--storage-driver", dest="storage_driver")
    p.add_argument("--default-runtime", dest="default_runtime")
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append")
    p.add_argument("--registry-config-dir", dest="registry_config_dir",
                   help="registry hosts directory: <dir>/<registry>/hosts.toml as containerd reads them")
    p.add_argument("--max-concurrent-downloads", dest="max_concurrent_downloads", type=int)
    p.add_argument("--max-concurrent-uploads", dest="max_concurrent_uploads", type=int)
    p.add_argument("--bip", dest="bip")
    p.add_argument("-b", "--bridge", dest="bridge_name")
    p.add_argument("--ipv6", dest="ipv6", type=_flag_bool, nargs="?", const=True, metavar="true|false",
                   help="IPv6 on the default bridge (needs --fixed-cidr-v6)")
    p.add_argument("--fixed-cidr-v6", dest="fixed_cidr_v6", help="the default bridge's IPv6 subnet")
    p.add_argument("--ip6tables", dest="ip6tables", type=_flag_bool, nargs="?", const=True, metavar="true|false",
                   help="ip6tables NAT and forwarding rules for IPv6 networks (default false, as dockerd 20.10)")
    p.add_argument("--userland-proxy", dest="userland_proxy", type=_flag_bool, nargs="?", const=True,
                   metavar="true|false")
    p.add_argument("--live-restore", dest="live_restore", action="store_const", const=True)
    p.add_argument("--log-driver", dest="log_driver")
    p.add_argument("--log-opt", dest="log_opts", action="append")
    p.add_argument("-G", "--group", dest="group")
    p.add_argument("--tls", dest="tls", action="store_const", const=True)
    p.add_argument("--tlsverify", dest="tlsverify", action="store_const", const=True)
    p.add_argument("--tlscacert", dest="tlscacert")
    p.add_argument("--tlscert", dest="tlscert")
    p.add_argument("--tlskey", dest="tlskey")
    p.add_argument("--api-cors-header", dest="api_cors_header",
                   help="the browser origin allowed to call the API ('*': any); without it browsers are refused")
    p.add_argument("--exec-opt", dest="exec_opts", action="append",
                   help="runtime execution options (native.cgroupdriver=cgroupfs|systemd)")
    p.add_argument("--cri-socket", dest="cri_socket",
                   help="the Kubernetes CRI's unix socket (default <exec-root>/cri.sock; '' serves no CRI)")
    p.add_argument("--cri-stream-address", dest="cri_stream_address",
                   help="IP:PORT of the CRI's streaming server for exec, attach and port-forward "
                        "(default 127.0.0.1:0, a free port)")
    p.add_argument("--cri-stream-idle-timeout", dest="cri_stream_idle_timeout",
                   help="close an exec, attach or port-forward stream without traffic for this long "
                        "(a duration: 4h, 30s; default 4h0m0s; 0 never)")
    p.add_argument("--cni-conf-dir", dest="cni_conf_dir", help="the CNI network configuration directory")
    p.add_argument("--cni-bin-dir", dest="cni_bin_dirs", action="append", help="a directory of CNI plugins")
    p.add_argument("--sandbox-image", dest="sandbox_image", help="the image of a Kubernetes pod's pause container")
    p.add_argument("--allow-insecure-tcp", dest="allow_insecure_tcp", action="store_const", const=True,
                   help="serve tcp:// without TLS (anyone who reaches the port is root on this host)")
    return p


_FLAG_ONLY = {"config_file", "allow_insecure_tcp"}


def load(argv: list[str] | None = None) -> DaemonConfig:
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if v is not None}
    if "log_opts" in flags:
        flags["log_opts"] = _parse_kv(flags["log_opts"], "--log-opt")

    config = DaemonConfig()
    config_file = flags.get("config_file", DEFAULT_CONFIG_FILE)
    config.config_file = config_file
    file_values: dict[str, Any] = {}
    if os.path.exists(config_file):
        file_values = _read_file(config_file)
    elif "config_file" in flags:
        raise ConfigError(f"unable to configure the daemon: open {config_file}: no such file or directory")

    both = sorted(set(file_values) & set(flags))
    if both:
        detail = ", ".join(f"{k}: (from flag: {flags[k]}, from file: {file_values[k]})" for k in both)
        raise ConfigError(
            f"the following directives are specified both as a flag and in the configuration file: {detail}")
    for attr, value in {**file_values, **flags}.items():
        setattr(config, attr, value)
    validate(config)
    return config


def _flag_bool(text: str) -> bool:
    """Go's strconv.ParseBool, as dockerd's boolean flags take ``--flag=false``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _parse_kv(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"invalid {what} {item!r}: expected key=value")
        out[key] = value
    return out


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"unable to configure the daemon with file {path}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"unable to configure the daemon with file {path}: not a JSON object")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"unable to configure the daemon with file {path}: the following directives don't match "
            f"any configuration option: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        attr, kind = _KEYS[key]
        # bool is an int in Python; a "true" for a count is still a wrong type
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"unable to configure the daemon with file {path}: {key}: wrong type "
                              f"{type(value).__name__}")
        values[attr] = value
    return values


def validate(c: DaemonConfig) -> None:
    if c.debug:
        c.log_level = "debug"
    if c.log_level not in LOG_LEVELS:
        raise ConfigError(f"unable to parse logging level: {c.log_level}")
    if not c.hosts:
        c.hosts = [DEFAULT_HOST]
    for host in c.hosts:
        if not isinstance(host, str) or not (host.startswith("unix://") or host.startswith("tcp://")
                                             or host.startswith("fd://")):
            raise ConfigError(f"invalid host {host!r}: expected unix://PATH or tcp://HOST:PORT")
    for path_attr in ("data_root", "exec_root"):
        if not os.path.isabs(getattr(c, path_attr)):
            raise ConfigError(f"{path_attr.replace('_', '-')} must be an absolute path")
    if c.cri_socket and not os.path.isabs(c.cri_socket):
        raise ConfigError("cri-socket must be an absolute path (or empty: no CRI)")
    try:
        parse_stream_address(c.cri_stream_address)
    except errors.InvalidParameter as e:
        raise ConfigError(f"cri-stream-address: {e}") from None
    try:
        parse_stream_idle_timeout(c.cri_stream_idle_timeout)
    except errors.InvalidParameter as e:
        raise ConfigError(f"cri-stream-idle-timeout: {e}") from None
    if not all(isinstance(d, str) and os.path.isabs(d) for d in c.cni_bin_dirs):
        raise ConfigError("cni-bin-dirs: expected a list of absolute paths")
    if c.storage_driver and c.storage_driver not in STORAGE_DRIVERS:
        raise ConfigError(f"unknown storage driver {c.storage_driver!r} (supported: {', '.join(STORAGE_DRIVERS)})")
    if c.log_driver not in LOG_DRIVERS:
        raise ConfigError(f"unknown log driver {c.log_driver!r} (supported: {', '.join(LOG_DRIVERS)})")
    for name, spec in c.runtimes.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            raise ConfigError(f"runtime {name!r}: expected an object with a \"path\"")
    if c.default_runtime != "runc" and c.default_runtime not in c.runtimes:
        raise ConfigError(f"default runtime {c.default_runtime!r} is not among the configured runtimes")
    if c.bip:
        _check_bip(c.bip)
    _check_bridge_name(c.bridge_name)
    _check_ipv6(c)
    if c.log_driver in jsonlog.DRIVERS:
        try:
            jsonlog.validate({"Type": c.log_driver, "Config": c.log_opts})
        except errors.InvalidParameter as e:
            raise ConfigError(f"invalid log-opts: {e}") from None
    for pool in c.default_address_pools:
        if not isinstance(pool, dict) or "base" not in pool or "size" not in pool:
            raise ConfigError("default-address-pools: each pool needs \"base\" and \"size\"")
        try:
            net = ipaddress.ip_network(pool["base"])
        except ValueError:
            raise ConfigError(f"default-address-pools: invalid base {pool['base']!r}") from None
        # room for the gateway and one container at least
        if not isinstance(pool["size"], int) or not net.prefixlen <= pool["size"] <= (30 if net.version == 4 else 126):
            raise ConfigError(f"default-address-pools: invalid size {pool['size']!r} for {pool['base']}")
    for reg in c.insecure_registries:
        if not isinstance(reg, str) or not reg:
            raise ConfigError(f"insecure-registries: invalid entry {reg!r}")
    if c.max_concurrent_downloads < 1 or c.max_concurrent_uploads < 1:
        raise ConfigError("max-concurrent-downloads and max-concurrent-uploads must be at least 1")
    if c.tlsverify:
        c.tls = True
    if not all(isinstance(opt, str) for opt in c.exec_opts):
        raise ConfigError("exec-opts: expected a list of key=value strings")
    try:
        c.cgroup_driver = cgroupdriver.from_exec_opts(c.exec_opts)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _check_bip(bip: str) -> None:
    """The default bridge's address, checked before a bridge is made with it."""
    try:
        iface = ipaddress.ip_interface(bip)
    except ValueError:
        raise ConfigError(f"invalid bip {bip!r}: expected an address with prefix, e.g. 172.30.0.1/16") from None
    if iface.version != 4:
        raise ConfigError(f"invalid bip {bip!r}: the default bridge takes an IPv4 address")
    net = iface.network
    if net.prefixlen > 30:
        raise ConfigError(f"invalid bip {bip!r}: a /{net.prefixlen} leaves no address for containers (at most /30)")
    if iface.ip in (net.network_address, net.broadcast_address):
        which = "network" if iface.ip == net.network_address else "broadcast"
        raise ConfigError(f"invalid bip {bip!r}: {iface.ip} is the {which} address of {net}; give the bridge's "
                          f"own address, e.g. {next(net.hosts())}/{net.prefixlen}")


def _check_ipv6(c: DaemonConfig) -> None:
    """dockerd's words (its network controller refuses these at start)."""
    prefix = "Error initializing network controller: "
    if c.fixed_cidr_v6:
        try:
            net = ipaddress.ip_network(c.fixed_cidr_v6, strict=False)
        except ValueError:
            raise ConfigError(f"{prefix}invalid CIDR address: {c.fixed_cidr_v6}") from None
        if net.version != 6:  # dockerd takes it and hands containers IPv4 "IPv6" addresses: refused here
            raise ConfigError(f"{prefix}fixed-cidr-v6 {c.fixed_cidr_v6} is not an IPv6 subnet")
    elif c.ipv6:
        raise ConfigError(f"{prefix}IPv6 is enabled for the default bridge, but no subnet is configured. Specify an "
                          "IPv6 subnet using --fixed-cidr-v6")


def _check_bridge_name(name: str) -> None:
    """A Linux interface name (the kernel's dev_valid_name: 1 to 15 bytes, no '/', ':' or white space)."""
    if not name or len(name.encode()) > 15 or name in (".", "..") or \
            any(ch in "/:" or ch.isspace() for ch in name):
        raise ConfigError(f"invalid bridge name {name!r}: an interface name is 1 to 15 characters without "
                          "'/', ':' or white space")
