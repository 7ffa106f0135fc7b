"""CNI: a pod's network made by the plugins of a network configuration list, as libcni runs them.

A list's plugins run in order on ADD, each given the previous one's result (``prevResult``), and in
reverse on DEL; CHECK replays the cached ADD result through every plugin. The ADD result is cached
(libcni keeps it under /var/lib/cni/results; here under the data root) because DEL and CHECK need
it, even after a daemon restart. Capabilities (``portMappings``) reach only the plugins that declare
them, in ``runtimeConfig``. The Kubernetes pod comes in ``CNI_ARGS`` (``pod_args``).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..util.atomic import write_atomic

log = logging.getLogger("dockyard.network.cni")

CONFIG_EXTENSIONS = (".conflist", ".conf", ".json")
DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_BIN_DIRS = ("/opt/cni/bin", "/usr/lib/cni")
CACHE_KIND = "cniCacheV1"
# results of versions before 0.4.0 carry no prevResult on DEL and have no CHECK
_NO_PREV_RESULT = ("0.1.0", "0.2.0", "0.3.0", "0.3.1")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


class CniError(errors.SystemError_):
    """A plugin failed, or the configuration cannot be used; the message says which and why."""


class NoNetworkConfig(CniError):
    """No valid network configuration in the directory: the network is not ready."""


@dataclass
class NetworkConfigList:
    """One network: its name, CNI version and plugin configurations, in order."""

    name: str
    cni_version: str
    plugins: list[dict[str, Any]]
    raw: bytes  # as read, for the cache (libcni keeps the list it ran)
    path: str = ""
    disable_check: bool = False


@dataclass
class RuntimeConf:
    """What the runtime tells the plugins about one container (a pod's sandbox)."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: list[tuple[str, str]] = field(default_factory=list)
    # by capability name, e.g. {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    capability_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """A plugin list's ADD result: the raw JSON, and the addresses given to the container."""

    raw: dict[str, Any]

    @property
    def ips(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """Addresses on the container's side: those of interfaces with a sandbox, or all when unsaid."""
        if "ips" not in self.raw:  # 0.1.0/0.2.0: ip4/ip6 objects
            return [ipaddress.ip_interface(self.raw[k]["ip"]) for k in ("ip4", "ip6") if self.raw.get(k)]
        interfaces = self.raw.get("interfaces") or []
        out = []
        for entry in self.raw.get("ips") or []:
            index = entry.get("interface")
            if isinstance(index, int) and 0 <= index < len(interfaces) and not interfaces[index].get("sandbox"):
                continue
            out.append(ipaddress.ip_interface(entry["address"]))
        return out


def pod_args(namespace: str, name: str, sandbox_id: str, uid: str) -> list[tuple[str, str]]:
    """The CNI_ARGS a kubelet's runtime passes; IgnoreUnknown lets plugins that know none of them run."""
    return [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", namespace), ("K8S_POD_NAME", name),
            ("K8S_POD_INFRA_CONTAINER_ID", sandbox_id), ("K8S_POD_UID", uid)]


def loopback_list() -> NetworkConfigList:
    """The list that brings up ``lo`` in a pod's namespace (containerd runs it beside the pod network)."""
    conf = {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}
    return parse_list(json.dumps(conf).encode(), "")


def parse_list(raw: bytes, path: str) -> NetworkConfigList:
    """A ``.conflist``, or a single plugin's ``.conf`` made a list of one (libcni's ConfListFromConf)."""
    where = path or "network configuration"
    try:
        conf = json.loads(raw)
    except ValueError as e:
        raise CniError(f"{where}: invalid JSON: {e}") from None
    if not isinstance(conf, dict):
        raise CniError(f"{where}: not a JSON object")
    if "plugins" not in conf and not path.endswith(".conflist"):
        if not conf.get("type"):
            raise CniError(f"{where}: no plugin type")
        plugin = {k: v for k, v in conf.items() if k not in ("name", "cniVersion")}
        conf = {"name": conf.get("name"), "cniVersion": conf.get("cniVersion", ""), "plugins": [plugin]}
        raw = json.dumps(conf).encode()
    name, version, plugins = conf.get("name"), conf.get("cniVersion", ""), conf.get("plugins")
    if not isinstance(name, str) or not _NAME.match(name):
        raise CniError(f"{where}: invalid network name {name!r}")
    if not isinstance(version, str) or not version:
        raise CniError(f"{where}: no cniVersion")
    if not isinstance(plugins, list) or not plugins:
        raise CniError(f"{where}: no plugins in the list")
    for i, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin["type"]:
            raise CniError(f"{where}: plugin {i} has no type")
    return NetworkConfigList(name, version, plugins, raw, path, bool(conf.get("disableCheck")))


def load_dir(conf_dir: str) -> NetworkConfigList:
    """The first valid configuration of the directory, by file name (the one containerd and CRI-O use);
    invalid files are skipped with a warning, as there."""
    try:
        names = sorted(n for n in os.listdir(conf_dir) if n.endswith(CONFIG_EXTENSIONS))
    except FileNotFoundError:
        names = []
    except OSError as e:
        raise NoNetworkConfig(f"cannot read the CNI configuration directory {conf_dir}: {e.strerror}") from None
    for name in names:
        path = os.path.join(conf_dir, name)
        try:
            with open(path, "rb") as f:
                return parse_list(f.read(), path)
        except OSError as e:
            log.warning("skipping CNI configuration %s: %s", path, e.strerror)
        except CniError as e:
            log.warning("skipping CNI configuration: %s", e)
    raise NoNetworkConfig(f"no network config found in {conf_dir}")


class Cni:
    """Runs network configuration lists; ``cache_dir`` holds their ADD results."""

    def __init__(self, bin_dirs: list[str] | tuple[str, ...], cache_dir: str) -> None:
        self.bin_dirs = list(bin_dirs)
        self.cache_dir = cache_dir

    # -- the three operations ----------------------------------------------------------
    def add(self, net: NetworkConfigList, rt: RuntimeConf) -> Result:
        """ADD every plugin in order; on a failure what earlier plugins made is deleted again, so a
        failed ADD leaves no veth, address lease or port mapping behind."""
        prev: dict[str, Any] | None = None
        for i, plugin in enumerate(net.plugins):
            try:
                prev = self._run("ADD", net, plugin, rt, prev)
            except CniError:
                self._undo(net, rt, net.plugins[:i + 1], prev)
                raise
        result = prev or {"cniVersion": net.cni_version}
        self._write_cache(net, rt, result)
        return Result(result)

    def delete(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """DEL every plugin in reverse, with the cached result; deleting twice is not an error."""
        cached = self._read_cache(net, rt)
        self._delete(net, rt, cached["result"] if cached else None)
        try:
            os.unlink(self._cache_path(net, rt))
        except FileNotFoundError:
            pass

    def check(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """CHECK every plugin against the cached ADD result (CNI 0.4.0 and later)."""
        if net.cni_version in _NO_PREV_RESULT:
            raise CniError(f"network {net.name}: CHECK needs cniVersion 0.4.0 or later, not {net.cni_version}")
        if net.disable_check:
            return
        cached = self._read_cache(net, rt)
        if cached is None:
            raise CniError(f"network {net.name}: no cached result for container {rt.container_id}: "
                           "it was never added")
        for plugin in net.plugins:
            self._run("CHECK", net, plugin, rt, cached["result"])

    def delete_cached(self, network: str, container_id: str, ifname: str = "eth0",
                      netns_gone: bool = False) -> bool:
        """DEL with what the ADD ran with, from its cache (libcni's cached config): the configuration
        directory may have changed since, and DEL needs the ADD's args; False when nothing was added.
        ``netns_gone``: the namespace no longer exists, so CNI_NETNS is empty and the plugins release
        what they hold on the host (addresses, host veth ends, rules), as the spec has them do."""
        path = os.path.join(self.cache_dir, "results", f"{network}-{container_id}-{ifname}")
        entry = self._read_path(path)
        if entry is None:
            return False
        try:
            net = parse_list(base64.b64decode(entry.get("config", "")), "")
        except (CniError, ValueError) as e:
            raise CniError(f"the cached configuration of network {network} is unusable: {e}") from None
        args = [(str(k), str(v)) for k, v in entry.get("cniArgs") or []]
        rt = RuntimeConf(container_id, "" if netns_gone else str(entry.get("netns", "")), ifname, args,
                         dict(entry.get("capabilityArgs") or {}))
        self._delete(net, rt, entry["result"])
        os.unlink(path)
        return True

    def cached_entry(self, network: str, container_id: str, ifname: str = "eth0") -> Result | None:
        """The cached ADD result of a network by name (the conflist may have changed since)."""
        entry = self._read_path(os.path.join(self.cache_dir, "results", f"{network}-{container_id}-{ifname}"))
        return Result(entry["result"]) if entry is not None else None

    def cached_result(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        cached = self._read_cache(net, rt)
        return Result(cached["result"]) if cached else None

    def _delete(self, net: NetworkConfigList, rt: RuntimeConf, prev: dict[str, Any] | None) -> None:
        if net.cni_version in _NO_PREV_RESULT:
            prev = None
        for plugin in reversed(net.plugins):
            self._run("DEL", net, plugin, rt, prev)

    def _undo(self, net: NetworkConfigList, rt: RuntimeConf, ran: list[dict[str, Any]],
              prev: dict[str, Any] | None) -> None:
        """DEL the plugins of a failed ADD (the failed one too: it may have done half its work), each
        even when another fails, since nobody will ever DEL this container again."""
        if net.cni_version in _NO_PREV_RESULT:
            prev = None
        for plugin in reversed(ran):
            try:
                self._run("DEL", net, plugin, rt, prev)
            except CniError as e:
                log.warning("undoing the failed ADD of network %s: %s", net.name, e)

    # -- one plugin --------------------------------------------------------------------
    def _run(self, command: str, net: NetworkConfigList, plugin: dict[str, Any], rt: RuntimeConf,
             prev: dict[str, Any] | None) -> dict[str, Any] | None:
        """Execute one plugin; its parsed result (ADD) or None."""
        kind = plugin["type"]
        exe = self._find(kind)
        conf = {**plugin, "name": net.name, "cniVersion": net.cni_version}
        if prev is not None:
            conf["prevResult"] = prev
        wanted = {cap for cap, on in (plugin.get("capabilities") or {}).items() if on}
        runtime_config = {cap: value for cap, value in rt.capability_args.items() if cap in wanted}
        if runtime_config:
            conf["runtimeConfig"] = runtime_config
        env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": rt.container_id,
               "CNI_NETNS": rt.netns, "CNI_IFNAME": rt.ifname,
               "CNI_ARGS": ";".join(f"{k}={v}" for k, v in rt.args), "CNI_PATH": os.pathsep.join(self.bin_dirs)}
        proc = subprocess.run([exe], input=json.dumps(conf).encode(), env=env, capture_output=True)
        what = f'plugin type="{kind}" name="{net.name}" failed ({command.lower()})'
        if proc.returncode != 0:
            raise CniError(f"{what}: {_plugin_error(proc.stdout, proc.stderr)}")
        if command != "ADD":
            return None
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise CniError(f"{what}: its result is not JSON: {proc.stdout[:200]!r}") from None
        if not isinstance(result, dict):
            raise CniError(f"{what}: its result is not a JSON object")
        return result

    def _find(self, kind: str) -> str:
        if "/" in kind or kind in (".", ".."):
            raise CniError(f"invalid plugin type {kind!r}")
        for d in self.bin_dirs:
            path = os.path.join(d, kind)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        raise CniError(f'failed to find plugin "{kind}" in path {self.bin_dirs}')

    # -- the result cache (libcni's layout and fields) -----------------------------------
    def _cache_path(self, net: NetworkConfigList, rt: RuntimeConf) -> str:
        return os.path.join(self.cache_dir, "results", f"{net.name}-{rt.container_id}-{rt.ifname}")

    def _write_cache(self, net: NetworkConfigList, rt: RuntimeConf, result: dict[str, Any]) -> None:
        path = self._cache_path(net, rt)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        entry = {"kind": CACHE_KIND, "containerId": rt.container_id, "config": base64.b64encode(net.raw).decode(),
                 "ifName": rt.ifname, "networkName": net.name, "cniArgs": [list(a) for a in rt.args],
                 "capabilityArgs": rt.capability_args, "result": result,
                 "netns": rt.netns}  # a DEL from the cache alone needs it
        write_atomic(path, json.dumps(entry))

    def _read_cache(self, net: NetworkConfigList, rt: RuntimeConf) -> dict[str, Any] | None:
        return self._read_path(self._cache_path(net, rt))

    def _read_path(self, path: str) -> dict[str, Any] | None:
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("ignoring the unreadable CNI cache %s: %s", path, e)
            return None
        if not isinstance(entry, dict) or entry.get("kind") != CACHE_KIND or not isinstance(entry.get("result"), dict):
            log.warning("ignoring the CNI cache %s: not a %s entry", path, CACHE_KIND)
            return None
        return entry


def _plugin_error(stdout: bytes, stderr: bytes) -> str:
    """A failed plugin's words: the CNI error object on stdout ({code, msg, details}), else its stderr."""
    try:
        err = json.loads(stdout)
    except ValueError:
        err = None
    if isinstance(err, dict) and err.get("msg"):
        text = str(err["msg"])
        if err.get("details"):
            text += f"; {err['details']}"
        return text
    return (stderr or stdout).decode(errors="replace").strip() or "no error message"
