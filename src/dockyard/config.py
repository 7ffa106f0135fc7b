"""dockyardd's settings: what the flags and daemon.json say, and the part of it each service is handed.

A leaf below every service: flag and daemon.json parsing stays in ``daemon/config.py``; the engine
hands each service only its own settings (``containers()``, ``network()``, ``registry()``), so a
service cannot come to depend on a setting that is not its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"
DEFAULT_HOST = "unix:///run/dockyard.sock"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
STORAGE_DRIVERS = ("overlay2", "overlay", "vfs")
LOG_DRIVERS = ("json-file", "local", "none")


class ConfigError(Exception):
    pass


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    pidfile: str = ""
    log_level: str = "info"
    debug: bool = False
    storage_driver: str = ""
    default_runtime: str = "runc"
    runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    # containerd's registry hosts directory (its CRI's config_path): <dir>/<registry>/hosts.toml; "" for none
    registry_config_dir: str = "/etc/dockyard/certs.d"
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    bip: str = ""
    bridge_name: str = "dockyard0"
    default_address_pools: list[dict[str, Any]] = field(default_factory=list)
    iptables: bool = True
    # IPv6 on the default bridge (dockerd's --ipv6, --fixed-cidr-v6); ip6tables rules for IPv6 networks
    # only when asked, as dockerd 20.10's (experimental there) --ip6tables, default false
    ipv6: bool = False
    fixed_cidr_v6: str = ""
    ip6tables: bool = False
    # dockerd's default: loopback traffic to published ports goes through a proxy, so bridges keep
    # route_localnet=0 (with false: kernel DNAT, route_localnet=1 and raw-table drops)
    userland_proxy: bool = True
    live_restore: bool = False
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    group: str = "docker"
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    allow_insecure_tcp: bool = False
    # the browser origin allowed to call the API (dockerd's --api-cors-header); others get 403
    api_cors_header: str = ""
    config_file: str = DEFAULT_CONFIG_FILE
    # dockerd's --exec-opt; native.cgroupdriver sets cgroup_driver (runtime/cgroupdriver.py)
    exec_opts: list[str] = field(default_factory=list)
    cgroup_driver: str = "cgroupfs"
    # dockerd's "builder" section; only entitlements.security-insecure is read (builder/entitlements.py)
    builder: dict[str, Any] = field(default_factory=dict)
    # the Kubernetes CRI's socket (cri/): None is <exec-root>/cri.sock, "" serves no CRI
    cri_socket: str | None = None
    # where the CRI's streaming server (exec, attach, port-forward URLs) listens; port 0 is any free one
    cri_stream_address: str = "127.0.0.1:0"
    # a Go duration: a stream connection idle that long is closed (containerd's stream_idle_timeout); "0": never
    cri_stream_idle_timeout: str = "4h0m0s"
    # CNI, for the CRI's pods (network/cni.py): where the conflist is and where the plugins are
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: list[str] = field(default_factory=lambda: ["/opt/cni/bin", "/usr/lib/cni"])
    # the image of a pod's pause container (cri/sandboxes.py: pods sharing their PID namespace), as
    # containerd's sandbox_image
    sandbox_image: str = "registry.k8s.io/pause:3.10"

    @property
    def pidfile_path(self) -> str:
        return self.pidfile or os.path.join(self.exec_root, "dockyardd.pid")

    @property
    def cri_socket_path(self) -> str:
        return os.path.join(self.exec_root, "cri.sock") if self.cri_socket is None else self.cri_socket

    def runtime_path(self, name: str) -> str:
        return runtime_path(self.runtimes, name)

    def containers(self) -> ContainerSettings:
        return ContainerSettings(data_root=self.data_root, exec_root=self.exec_root,
                                 default_runtime=self.default_runtime, runtimes=dict(self.runtimes),
                                 log_driver=self.log_driver, log_opts=dict(self.log_opts))

    def network(self) -> NetworkSettings:
        return NetworkSettings(data_root=self.data_root, exec_root=self.exec_root, bip=self.bip,
                               bridge_name=self.bridge_name,
                               default_address_pools=list(self.default_address_pools),
                               iptables=self.iptables, userland_proxy=self.userland_proxy,
                               ipv6=self.ipv6, fixed_cidr_v6=self.fixed_cidr_v6, ip6tables=self.ip6tables)

    def registry(self) -> RegistrySettings:
        return RegistrySettings(mirrors=list(self.registry_mirrors), insecure=list(self.insecure_registries),
                                config_dir=self.registry_config_dir,
                                max_concurrent_downloads=self.max_concurrent_downloads,
                                max_concurrent_uploads=self.max_concurrent_uploads)


def runtime_path(runtimes: dict[str, dict[str, Any]], name: str) -> str:
    if name in runtimes:
        return str(runtimes[name].get("path", name))
    if name == "runc":
        return "runc"
    raise ConfigError(f"unknown runtime specified {name}")


@dataclass(frozen=True)
class ContainerSettings:
    data_root: str
    exec_root: str
    default_runtime: str
    runtimes: dict[str, dict[str, Any]]
    # the daemon's log driver and options, merged into a container's LogConfig at create
    log_driver: str
    log_opts: dict[str, str]

    def runtime_path(self, name: str) -> str:
        return runtime_path(self.runtimes, name)


@dataclass(frozen=True)
class NetworkSettings:
    data_root: str
    exec_root: str
    bip: str
    bridge_name: str
    default_address_pools: list[dict[str, Any]]
    iptables: bool
    userland_proxy: bool
    ipv6: bool = False
    fixed_cidr_v6: str = ""
    ip6tables: bool = False


@dataclass(frozen=True)
class RegistrySettings:
    mirrors: list[str]
    insecure: list[str]
    config_dir: str
    max_concurrent_downloads: int
    max_concurrent_uploads: int
