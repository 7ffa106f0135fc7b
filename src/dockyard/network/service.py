"""The network service (``engine.networks``): networks, endpoints, the default bridge, ports, DNS.

A container on a bridge network gets a network namespace pinned under the exec
root before ``runc create`` (the spec joins it), a veth pair per network, and
its published ports as DNAT rules (and the userland proxy on the reserved host socket for what
DNAT cannot carry: the host's loopback traffic and hairpin); everything is undone when it exits.
Network records (with their live endpoints) are persisted, so a restarted
daemon finds the addresses, rules and DNS listeners of live containers again.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import secrets
import socket
import threading
from typing import Any, Callable

from .. import errors
from ..config import NetworkSettings
from ..util import boundfile, timefmt
from . import dns as dnsmod
from . import endpoints, ipam, iptables, ipv6, links, netfiles, netns, ports, proxy
from .publishing import PortPublishing
from .records import BRIDGE_NAME_OPT, Endpoint, Network
from .restore import NetworkRestore

log = logging.getLogger("dockyard.network")

Publish = Callable[[str, str, str, dict[str, str]], Any]
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
SPECIAL_MODES = ("host", "none")


class NetworkService(PortPublishing, NetworkRestore):
    def __init__(self, config: NetworkSettings, publish: Publish) -> None:
        self.config = config
        self._publish = publish
        self.root = os.path.join(config.data_root, "network", "networks")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.netns_dir = os.path.join(config.exec_root, "netns")
        self.iptables = iptables.Iptables(config.iptables, config.ip6tables)
        self._lock = threading.RLock()
        self._networks: dict[str, Network] = {}
        self._port_holders: dict[str, list[socket.socket | proxy.Proxy]] = {}  # what keeps each port
        self._upstreams: dict[str, list[str]] = {}
        self.dns = dnsmod.DnsServer(self._resolve, self._dns_upstreams)
        if config.iptables:
            iptables.enable_ip_forward()
        self._load()

    # -- lookup --------------------------------------------------------------------
    def get(self, ref: str) -> Network:
        """By full ID, name, or unique ID prefix, as dockerd resolves them."""
        with self._lock:
            if ref in self._networks:
                return self._networks[ref]
            for n in self._networks.values():
                if n.name == ref:
                    return n
            matches = [n for nid, n in self._networks.items() if ref and nid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errors.NotFound(f"network {ref} is ambiguous ({len(matches)} matches found on name)")
        raise errors.NotFound(f"network {ref} not found")

    def all(self) -> list[Network]:
        with self._lock:
            return list(self._networks.values())

    def ns_path(self, container_id: str) -> str:
        return os.path.join(self.netns_dir, container_id)

    # -- networks --------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> Network:
        name = body.get("Name") or ""
        if not name:
            raise errors.InvalidParameter("invalid name: name is empty")
        if name in ("bridge", "host", "none"):  # (sic: dockerd's trailing space)
            raise errors.Forbidden(f"operation is not permitted on predefined {name} network ")
        endpoints.check_scope(body)
        driver = body.get("Driver") or "bridge"
        if driver in ("host", "null"):
            raise errors.Forbidden(f"only one instance of \"{driver}\" network is allowed")
        if driver != "bridge":
            raise errors.NotFound(f"could not find plugin {driver} in v1 plugin registry: plugin not found")
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        ipam_cfg = body.get("IPAM") or {}
        if (ipam_cfg.get("Driver") or "default") != "default":
            raise errors.NotFound(f"could not find plugin {ipam_cfg['Driver']} in v1 plugin registry: "
                                  f"plugin not found")
        configs = [c for c in (ipam_cfg.get("Config") or []) if c.get("Subnet") and ":" not in c["Subnet"]]
        with self._lock:
            subnet6, gateway6, gateway6_given = ("", "", False) if not body.get("EnableIPv6") else ipv6.config(
                ipam_cfg.get("Config") or [], self.config.default_address_pools,
                [ipaddress.IPv6Network(n.subnet6) for n in self._networks.values() if n.subnet6])
            # whatever CheckDuplicate says: a daemon speaking API 1.44 refuses duplicates at every version
            # (CHANGELOG v1.44, "unversioned"), where dockerd 20.10 made one with a warning
            if any(n.name == name for n in self._networks.values()):
                raise errors.Conflict(f"network with name {name} already exists")
            net_id = secrets.token_hex(32)
            bridge = options.get(BRIDGE_NAME_OPT) or "br-" + net_id[:12]
            if len(bridge) > 15:
                raise errors.InvalidParameter(f"bridge name {bridge} is longer than 15 characters")
            if any(n.bridge == bridge for n in self._networks.values()):
                raise errors.Forbidden(f"bridge name {bridge} is already in use by another network")
            cfg = configs[0] if configs else {}
            subnet, gateway, ip_range = self._ipam_config(cfg)
            n = Network(id=net_id, name=name, created=timefmt.now_fixed(), internal=bool(body.get("Internal")),
                        attachable=bool(body.get("Attachable")), labels=dict(body.get("Labels") or {}),
                        options=options, subnet=str(subnet), gateway=str(gateway),
                        ip_range=str(ip_range) if ip_range else "", bridge=bridge,
                        ipam_options=dict(ipam_cfg.get("Options") or {}), user_subnet=bool(cfg),
                        subnet6=subnet6, gateway6=gateway6, gateway6_given=gateway6_given)
            if subnet6 and any(o.subnet6 and ipaddress.ip_network(o.subnet6).overlaps(ipaddress.ip_network(subnet6))
                               for o in self._networks.values()):
                raise errors.Forbidden("invalid pool request: Pool overlaps with other one on this address space")
            try:
                self._bring_up(n)
            except links.NotABridge as e:
                raise errors.InvalidParameter(str(e)) from None
            self._networks[n.id] = n
            n.save(self.root)
        self._publish("network", "create", n.id, {"name": n.name, "type": n.driver})
        return n

    def _ipam_config(self, cfg: dict[str, Any]) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Address,
                                                           ipaddress.IPv4Network | None]:
        ours = [ipaddress.ip_network(n.subnet) for n in self._networks.values() if n.subnet]
        if cfg.get("Subnet"):
            try:
                subnet = ipaddress.ip_network(cfg["Subnet"], strict=False)
            except ValueError:
                raise errors.InvalidParameter(f"invalid subnet {cfg['Subnet']}") from None
            if any(subnet.overlaps(o) for o in ours):
                raise errors.Forbidden("invalid pool request: Pool overlaps with other one on this address space")
        else:
            subnet = ipam.choose_subnet(self.config.default_address_pools, ours + links.host_networks())
        ip_range = None
        if cfg.get("IPRange"):
            try:
                ip_range = ipaddress.ip_network(cfg["IPRange"], strict=False)
            except ValueError:
                raise errors.InvalidParameter(f"invalid ip-range {cfg['IPRange']}") from None
            if not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
                raise errors.InvalidParameter(
                    f"invalid network config:\ninvalid ip-range {ip_range}: it should be a subset of {subnet}")
        if cfg.get("Gateway"):
            try:
                gateway = ipaddress.ip_address(cfg["Gateway"])
            except ValueError:
                raise errors.InvalidParameter(f"invalid gateway address {cfg['Gateway']}") from None
            if gateway not in subnet:
                raise errors.InvalidParameter(
                    f"invalid network config:\ninvalid gateway address {gateway}: it is not in subnet {subnet}")
        else:
            gateway = ipam.gateway_for(subnet)  # type: ignore[arg-type]
        return subnet, gateway, ip_range  # type: ignore[return-value]

    def remove(self, ref: str) -> None:
        n = self.get(ref)
        with self._lock:
            if n.predefined:
                raise errors.Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
            live = [ep for ep in n.endpoints.values() if ep.address]
            if live:
                raise errors.Forbidden(f"error while removing network: network {n.name} id {n.id} has active "
                                       f"endpoints")
            self._bring_down(n)
            del self._networks[n.id]
            n.delete(self.root)
        self._publish("network", "destroy", n.id, {"name": n.name, "type": n.driver})

    def prune(self, keep: Callable[[Network], bool]) -> list[str]:
        deleted = []
        for n in self.all():
            if n.predefined or n.endpoints or keep(n):
                continue
            try:
                self.remove(n.id)
                deleted.append(n.name)
            except errors.DockyardError:
                continue
        return deleted

    def _bring_up(self, n: Network) -> None:
        """The bridge device and the network's rules (again, after a restart or when they vanished)."""
        if n.driver != "bridge":
            return
        created, added = links.ensure_bridge(n.bridge, self._gateway(n), route_localnet=not self.config.userland_proxy)
        n.bridge_created |= created
        n.gateway_added |= added
        if n.subnet6:
            n.gateway6_added |= ipv6.ensure_address(n.bridge, self._gateway6(n))
            if self.config.iptables:
                iptables.enable_ip6_forward()
        rules = self._network_rules(n)
        drops = self._drop_rules(n)
        self.iptables.delete(self._other_mode(rules, self._network_rules(n, not self.config.userland_proxy)))
        self.iptables.delete(rules + drops)  # left by a daemon that died: never twice
        self.iptables.add(rules)
        self.iptables.insert(drops)

    def _bring_down(self, n: Network) -> None:
        """Only what bringing it up added: an adopted bridge stays, and so does one another daemon uses."""
        if n.driver != "bridge":
            return
        self.iptables.delete(self._network_rules(n) + self._drop_rules(n))
        if n.bridge_created:
            if not links.bridge_ports(n.bridge):  # else another daemon's veths are on it: theirs too now
                links.delete_link(n.bridge)
            return
        if n.gateway_added:
            links.remove_address(n.bridge, self._gateway(n))
        if n.gateway6_added:
            ipv6.remove_address(n.bridge, self._gateway6(n))
        if not self.config.userland_proxy:
            links.set_route_localnet(n.bridge, False)

    @staticmethod
    def _gateway6(n: Network) -> ipaddress.IPv6Interface:
        return ipaddress.IPv6Interface(f"{n.gateway6}/{ipaddress.ip_network(n.subnet6).prefixlen}")

    def _gateway(self, n: Network) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{n.gateway}/{ipaddress.ip_network(n.subnet).prefixlen}")

    def _network_rules(self, n: Network, userland_proxy: bool | None = None) -> list[iptables.Rule]:
        proxied = self.config.userland_proxy if userland_proxy is None else userland_proxy
        rules = iptables.network_rules(n.bridge, n.subnet, n.internal, proxied)
        return rules + (iptables.network_rules6(n.bridge, n.subnet6, n.internal) if n.subnet6 else [])

    @staticmethod
    def _drop_rules(n: Network) -> list[iptables.Rule]:
        if not n.internal:
            return []
        rules = iptables.internal_drop_rules(n.bridge)
        return rules + (iptables.internal_drop_rules(n.bridge, 6) if n.subnet6 else [])

    @staticmethod
    def _other_mode(rules: list[iptables.Rule], other: list[iptables.Rule]) -> list[iptables.Rule]:
        """Rules only the other --userland-proxy setting adds: a daemon restarted with the setting changed
        finds them (a loopback DNAT left behind would send the host's traffic where route_localnet=0 drops it)."""
        return [r for r in other if r not in rules]

    # -- containers: membership ------------------------------------------------------------
    def _network_for_mode(self, mode: str) -> str:
        return "bridge" if mode in ("", "default") else mode

    def register(self, container_id: str, name: str, host_config: dict[str, Any],
                 networking_config: dict[str, Any] | None, config: dict[str, Any] | None = None) -> None:
        """At create: the networks the container asks for (checked now, joined at start)."""
        mode = host_config.get("NetworkMode") or "default"
        if mode in SPECIAL_MODES or mode.startswith("container:"):
            return
        wanted = dict((networking_config or {}).get("EndpointsConfig") or {})
        primary = self.get(self._network_for_mode(mode))
        if primary.driver != "bridge":
            raise errors.InvalidParameter(f"container cannot be connected to network {primary.name}")
        if wanted and len(wanted) > 1:
            raise errors.InvalidParameter(
                "Container cannot be connected to network endpoints: " + ", ".join(sorted(wanted)))
        cfg = dict((next(iter(wanted.values())) if wanted else None) or {})
        config = config or {}
        if config.get("MacAddress") and not cfg.get("MacAddress"):  # Config.MacAddress (API < 1.44): the primary's
            cfg["MacAddress"] = config["MacAddress"]
        ep = endpoints.from_config(primary, container_id, name, cfg, str(config.get("Hostname") or ""))
        with self._lock:
            primary.endpoints[container_id] = ep
            primary.save(self.root)

    def unregister(self, container_id: str) -> None:
        self.detach(container_id)
        with self._lock:
            for n in self._networks.values():
                if n.endpoints.pop(container_id, None) is not None:
                    n.save(self.root)

    def rename(self, container_id: str, new_name: str) -> None:
        with self._lock:
            for n in self._networks.values():
                ep = n.endpoints.get(container_id)
                if ep is not None:
                    ep.name = new_name.lstrip("/")
                    n.save(self.root)

    def memberships(self, container_id: str) -> list[tuple[Network, Endpoint]]:
        # Without the lock: the container list calls this on the API's event loop, which must not wait while
        # a network is brought up under it. list() of a dict's values and dict.get are atomic under the GIL.
        out = []
        for n in list(self._networks.values()):
            ep = n.endpoints.get(container_id)
            if ep is not None:
                out.append((n, ep))
        return out

    # -- containers: start and exit --------------------------------------------------------
    def attach(self, container: Any, hosts_path: str, resolv_path: str) -> str | None:
        """Before ``runc create``: the namespace, interfaces, ports and DNS; returns the netns path."""
        primary = self._network_for_mode(container.host_config.get("NetworkMode") or "")
        members = sorted(self.memberships(container.id), key=lambda m: m[0].name != primary and m[0].id != primary)
        if not members:
            return None
        path = self.ns_path(container.id)
        self.detach(container.id)  # anything a crash left
        netns.create(path)
        hc = container.host_config
        self._upstreams[container.id] = [s for s in (hc.get("Dns") or []) if ":" not in s] or \
            dnsmod.host_nameservers()
        try:
            for i, (n, ep) in enumerate(members):
                self._plug(n, ep, path, f"eth{i}", first=i == 0)
                self._publish("network", "connect", n.id,
                              {"container": container.id, "name": n.name, "type": n.driver})
            n, ep = members[0]
            self._publish_ports(n, ep, container)
            user_defined = any(n.user_defined for n, _ in members)
            if user_defined:
                self.dns.listen(container.id, path)
            self._write_files(container, members, hosts_path, resolv_path, user_defined)
        except BaseException:
            self.detach(container.id)
            raise
        with self._lock:
            for n, _ in members:
                n.save(self.root)
        return path

    def _plug(self, n: Network, ep: Endpoint, path: str, ifname: str, first: bool) -> None:
        subnet = ipaddress.ip_network(n.subnet)
        with self._lock:
            used = {ipaddress.ip_address(n.gateway)} | {
                ipaddress.ip_interface(e.address).ip for e in n.endpoints.values() if e.address}
            addr = ipam.allocate(subnet, ipaddress.ip_network(n.ip_range) if n.ip_range else None,  # type: ignore[arg-type]
                                 used, ep.static_ip)
            ep.address = f"{addr}/{subnet.prefixlen}"  # reserved before the (slower) plumbing
            mac = ep.mac_wanted or links.mac_for(addr)  # type: ignore[arg-type]
            if n.subnet6:
                subnet6 = ipaddress.IPv6Network(n.subnet6)
                used6 = {ipaddress.ip_address(n.gateway6)} | {
                    ipaddress.ip_interface(e.address6).ip for e in n.endpoints.values() if e.address6}
                try:
                    if n.name == "bridge" and ipv6.mac_derived(subnet6) and not ep.static_ip6:
                        addr6 = ipv6.address_from_mac(subnet6, mac)
                    else:
                        addr6 = ipam.allocate(subnet6, None, used6, ep.static_ip6)  # type: ignore[arg-type]
                except BaseException:
                    ep.address = ""
                    raise
                ep.address6 = f"{addr6}/{subnet6.prefixlen}"
        try:
            try:
                ep.host_end = self._add_interface(n, ep, path, ifname, first)
            except OSError as e:
                if e.errno != errno.ENODEV:
                    raise
                # the bridge was deleted under the daemon: made again, as dockerd's start would
                log.warning("network %s: %s; creating it again", n.name, e.strerror)
                with self._lock:
                    self._bring_up(n)
                    n.save(self.root)
                ep.host_end = self._add_interface(n, ep, path, ifname, first)
        except BaseException:
            ep.address = ep.address6 = ""
            raise
        ep.ifname = ifname
        ep.mac = mac
        ep.endpoint_id = secrets.token_hex(32)

    def _add_interface(self, n: Network, ep: Endpoint, path: str, ifname: str, first: bool) -> str:
        host_end = links.add_interface(path, n.bridge, ifname, ipaddress.ip_interface(ep.address),
                                       None if n.internal or not first else ipaddress.ip_address(n.gateway),
                                       mac=ep.mac_wanted)
        if ep.address6:
            try:
                ipv6.add_container_address(path, ifname, ipaddress.IPv6Interface(ep.address6),
                                           None if n.internal else ipaddress.IPv6Address(n.gateway6))
            except BaseException:
                links.delete_link(host_end)
                raise
        return host_end

    def _write_files(self, container: Any, members: list[tuple[Network, Endpoint]], hosts_path: str,
                     resolv_path: str, user_defined: bool) -> None:
        hostname = container.config.get("Hostname") or container.id[:12]
        domain = container.config.get("Domainname")
        names = f"{hostname}.{domain} {hostname}" if domain else hostname  # dockerd's FQDN first
        lines = [HOSTS, self.extra_hosts(container.host_config)]
        for n, ep in members:
            lines.append(f"{ipaddress.ip_interface(ep.address).ip}\t{names}\n")
            if ep.address6:
                lines.append(f"{ipaddress.ip_interface(ep.address6).ip}\t{names}\n")
        boundfile.rewrite(hosts_path, "".join(lines))
        if user_defined:
            boundfile.rewrite(resolv_path, netfiles.resolv_conf(self._upstreams.get(container.id, []),
                                                                container.host_config))

    def extra_hosts(self, host_config: dict[str, Any]) -> str:
        """``--add-host`` entries as hosts-file lines, in libnetwork's order and form (``IP\tNAME``, after
        the defaults, before the container's own line); ``host-gateway`` is the default bridge's gateway,
        as dockerd's default host-gateway-ip is docker0's address."""
        out = []
        for entry in host_config.get("ExtraHosts") or []:
            sep = min((i for i in (entry.find(":"), entry.find("=")) if i > 0), default=-1)
            name, addr = entry[:sep], entry[sep + 1:]
            if addr.startswith("[") and addr.endswith("]"):
                addr = addr[1:-1]
            if addr == "host-gateway":
                try:
                    addr = self.get("bridge").gateway
                except errors.NotFound:
                    raise errors.InvalidParameter("unable to derive the IP value for host-gateway") from None
            out.append(f"{addr}\t{name}\n")
        return "".join(out)

    def detach(self, container_id: str) -> None:
        """After exit (or a failed start): interfaces, rules, ports, DNS and the namespace go."""
        path = self.ns_path(container_id)
        self.dns.close_listener(container_id)
        for holder in self._port_holders.pop(container_id, []):
            holder.close()
        self._upstreams.pop(container_id, None)
        for n, ep in self.memberships(container_id):
            if not ep.address:
                continue
            self._unplug(n, ep, path)
            self._publish("network", "disconnect", n.id, {"container": container_id, "name": n.name,
                                                          "type": n.driver})
        if os.path.exists(path):
            netns.remove(path)

    def _unplug(self, n: Network, ep: Endpoint, path: str) -> None:
        if ep.ports:
            self.iptables.delete([r for p in ep.ports for r in self._port_rules(n, ep, p)])
        try:
            links.remove_interface(path, ep.ifname, ep.host_end)
        except OSError as e:
            log.warning("removing %s of %s: %s", ep.host_end, ep.container_id[:12], e)
        with self._lock:
            ep.address = ep.address6 = ep.mac = ep.ifname = ep.host_end = ep.endpoint_id = ""
            ep.ports = []
            n.save(self.root)

    # -- containers: connect and disconnect --------------------------------------------------
    def connect(self, net_ref: str, container: Any, cfg: dict[str, Any], running: bool) -> None:
        n = self.get(net_ref)
        mode = container.host_config.get("NetworkMode") or ""
        if mode in SPECIAL_MODES or mode.startswith("container:"):
            raise errors.Forbidden("container sharing network namespace with another container or host "
                                   "cannot be connected to any other network" if mode.startswith("container:")
                                   else "container cannot be disconnected from host network or connected to "
                                        "host network")
        if n.driver != "bridge":
            raise errors.Forbidden("container cannot be disconnected from host network or connected to "
                                   "host network")
        with self._lock:
            if container.id in n.endpoints:
                raise errors.Forbidden(f"endpoint with name {container.name.lstrip('/')} already exists in "
                                       f"network {n.name}")
            ep = endpoints.from_config(n, container.id, container.name, cfg or {},
                                       str(container.config.get("Hostname") or ""))
            members = self.memberships(container.id)
            n.endpoints[container.id] = ep
        if running:
            path = self.ns_path(container.id)
            try:
                self._plug(n, ep, path, endpoints.free_ifname(members), first=not any(e.address for _, e in members))
                if n.user_defined:
                    if not self._upstreams.get(container.id):
                        self._upstreams[container.id] = dnsmod.host_nameservers()
                    self.dns.listen(container.id, path)
            except BaseException:
                with self._lock:
                    n.endpoints.pop(container.id, None)
                raise
            hostname = container.config.get("Hostname") or container.id[:12]
            netfiles.append(container.hosts_path, "".join(f"{ipaddress.ip_interface(a).ip}\t{hostname}\n"
                                                  for a in (ep.address, ep.address6) if a))
        with self._lock:
            n.save(self.root)
        if running:
            self._publish("network", "connect", n.id, {"container": container.id, "name": n.name, "type": n.driver})

    def disconnect(self, net_ref: str, container: Any, force: bool) -> None:
        n = self.get(net_ref)
        with self._lock:
            ep = n.endpoints.get(container.id)
        if ep is None:
            if n.driver in ("host", "null"):
                raise errors.Forbidden("container cannot be disconnected from host network or connected to "
                                       "host network")
            raise errors.Forbidden(f"container {container.id} is not connected to network {n.name}")
        if ep.address:
            self._unplug(n, ep, self.ns_path(container.id))
            self._publish("network", "disconnect", n.id,
                          {"container": container.id, "name": n.name, "type": n.driver})
        with self._lock:
            n.endpoints.pop(container.id, None)
            n.save(self.root)
            if not any(self.memberships(container.id)):
                self.dns.close_listener(container.id)

    # -- what inspect shows ------------------------------------------------------------------
    def container_settings(self, container: Any) -> dict[str, Any]:
        """NetworkSettings of a container, as dockerd shapes it."""
        mode = container.host_config.get("NetworkMode") or "bridge"
        members = self.memberships(container.id)
        live = any(ep.address for _, ep in members)
        exposed = container.config.get("ExposedPorts")
        published = [p for _, ep in members for p in ep.ports]
        settings: dict[str, Any] = {
            "Bridge": "", "SandboxID": container.id if live else "",
            "SandboxKey": self.ns_path(container.id) if live else "",
            "Ports": ports.settings(published, exposed) if live else {},
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": {}}
        if not members:
            name = "none" if mode == "none" else "host" if mode == "host" else ""
            if name:
                n = self.get(name)
                settings["Networks"][name] = endpoints.settings(n, None, container.id)
            return settings
        for n, ep in members:
            s = endpoints.settings(n, ep, container.id)
            settings["Networks"][n.name] = s
            if n.name == "bridge":
                for key in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
                    settings[key] = s[key]
                # IPv6 on the default bridge (daemon ipv6, fixed-cidr-v6)
                for key in ("GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPv6Gateway"):
                    settings[key] = s[key]
        return settings

    def port_summary(self, container: Any) -> list[dict[str, Any]]:
        published = [p for _, ep in self.memberships(container.id) for p in ep.ports]
        return ports.summary(published, container.config.get("ExposedPorts"))

    # -- DNS ------------------------------------------------------------------------
    def _resolve(self, container_id: str, name: str) -> list[str] | None:
        found: list[str] = []
        internal_only = True
        for n, ep in self.memberships(container_id):
            if not n.user_defined or not ep.address:
                continue
            internal_only = internal_only and n.internal
            with self._lock:
                others = list(n.endpoints.values())
            linked = endpoints.link_aliases(ep.links)
            # "name.network" asks that network only, as libnetwork's resolver does
            wanted = name[:-len(n.name) - 1] if name.endswith("." + n.name.lower()) else name
            for other in others:
                if not other.address:
                    continue
                names = {other.name.lower(), other.container_id[:12], other.hostname.lower(),
                         *(a.lower() for a in other.aliases), *linked.get(other.name.lower(), ())}
                if wanted in names or name in names:
                    found.append(str(ipaddress.ip_interface(other.address).ip))
                    if other.address6:  # AAAA answers; a name without one on this network gets none
                        found.append(str(ipaddress.ip_interface(other.address6).ip))
        if found or internal_only:
            return found  # an internal network has no way out: nothing to forward to
        return None

    def _dns_upstreams(self, container_id: str) -> list[str]:
        return self._upstreams.get(container_id) or dnsmod.host_nameservers()

    def close(self) -> None:
        """Stop DNS and the proxies; bridges this daemon made for its own networks go when nothing is on them.

        The default bridge stays, with its rules, as dockerd keeps docker0: another daemon may be
        configured with the same bridge, and the next start finds it ready.
        """
        self.dns.close()
        for holders in self._port_holders.values():
            for holder in holders:
                holder.close()
        self._port_holders.clear()
        with self._lock:
            if any(ep.address for n in self._networks.values() for ep in n.endpoints.values()):
                return
            for n in self._networks.values():
                if n.predefined or not n.bridge_created:
                    continue
                try:
                    self._bring_down(n)
                except Exception as e:
                    log.warning("tearing down network %s: %s", n.name, e)
