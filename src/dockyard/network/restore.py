"""A start of the network service: the records read, the predefined networks made, bridges brought up
again and the endpoints of live containers (addresses, published ports, DNS) restored.

A part of ``NetworkService`` (service.py), kept apart for size; it shares the service's state.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets

from .. import errors
from ..config import ConfigError
from ..util import timefmt
from . import ipam, iptables, ipv6, links, netns, ports
from .records import BRIDGE_NAME_OPT, Network


log = logging.getLogger("dockyard.network")


class NetworkRestore:
    def _load(self) -> None:
        for entry in sorted(os.listdir(self.root)):
            if not entry.endswith(".json"):
                continue
            try:
                n = Network.load(os.path.join(self.root, entry))
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping unreadable network record %s: %s", entry, e)
                continue
            self._networks[n.id] = n
        names = {n.name for n in self._networks.values()}
        if "bridge" not in names:
            self._networks_default_bridge()
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in names:
                n = Network(id=secrets.token_hex(32), name=name, created=timefmt.now_fixed(), driver=driver)
                self._networks[n.id] = n
                n.save(self.root)
        for n in self._networks.values():
            if n.name == "bridge" and self.config.bip:
                iface = ipaddress.ip_interface(self.config.bip)
                n.subnet, n.gateway = str(iface.network), str(iface.ip)
            if n.name == "bridge":
                self._default_bridge_ipv6(n)
            try:
                self._bring_up(n)
                n.save(self.root)  # what it added (the default bridge's IPv6 gateway too), for the next start
            except links.NotABridge as e:
                if n.name == "bridge":  # -b eth0: every container would be plugged into the host's interface
                    raise ConfigError(f"error creating default \"bridge\" network: {e}") from None
                log.error("bringing up network %s: %s", n.name, e)
            except Exception as e:
                log.error("bringing up network %s (%s): %s", n.name, n.bridge, e)
            self._restore_endpoints(n)

    def _networks_default_bridge(self) -> None:
        if self.config.bip:
            iface = ipaddress.ip_interface(self.config.bip)
            subnet, gateway = iface.network, iface.ip
        else:
            ours = [ipaddress.ip_network(n.subnet) for n in self._networks.values() if n.subnet]
            mine = links.link_index(self.config.bridge_name) is not None
            taken = ours + ([] if mine else links.host_networks())
            subnet = ipam.choose_subnet(self.config.default_address_pools, taken)
            gateway = ipam.gateway_for(subnet)  # type: ignore[arg-type]
        n = Network(id=secrets.token_hex(32), name="bridge", created=timefmt.now_fixed(), subnet=str(subnet),
                    gateway=str(gateway), bridge=self.config.bridge_name,
                    options={"com.docker.network.bridge.default_bridge": "true",
                             "com.docker.network.bridge.enable_icc": "true",
                             "com.docker.network.bridge.enable_ip_masquerade": "true",
                             "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                             BRIDGE_NAME_OPT: self.config.bridge_name,
                             "com.docker.network.driver.mtu": "1500"})
        self._networks[n.id] = n
        n.save(self.root)
        log.info("default bridge network on %s: %s (gateway %s)", n.bridge, n.subnet, n.gateway)

    def _default_bridge_ipv6(self, n: Network) -> None:
        """The default bridge's IPv6 as the daemon is configured now (fixed-cidr-v6, the gateway its first
        address); a daemon started again without it takes the gateway it added off the bridge."""
        subnet6, gateway6 = ipv6.default_bridge(self.config.fixed_cidr_v6 if self.config.ipv6 else "")
        if (n.subnet6, n.gateway6) == (subnet6, gateway6):
            return
        if n.subnet6:
            self.iptables.delete(iptables.network_rules6(n.bridge, n.subnet6, n.internal))
        if n.gateway6_added:
            ipv6.remove_address(n.bridge, self._gateway6(n))
            n.gateway6_added = False
        n.subnet6, n.gateway6 = subnet6, gateway6
        n.save(self.root)

    def _restore_endpoints(self, n: Network) -> None:
        """Live containers keep their addresses, ports and DNS; the dead ones' are cleaned by detach."""
        for ep in n.endpoints.values():
            path = self.ns_path(ep.container_id)
            if not ep.address or not netns.exists(path):
                continue
            if ep.ports:
                rules = [r for p in ep.ports for r in self._port_rules(n, ep, p)]
                other = [r for p in ep.ports for r in self._port_rules(n, ep, p, not self.config.userland_proxy)]
                self.iptables.delete(self._other_mode(rules, other))
                self.iptables.delete(rules)
                self.iptables.add(rules)
                for p in ep.ports:
                    b = ports.Binding(p["proto"], p["port"], p["host_ip"], (p["host_port"], p["host_port"]))
                    try:
                        sock = ports.reserve(b, ep.name, listen=self.config.userland_proxy)[1]
                    except errors.DockyardError as e:
                        log.warning("restoring published port of %s: %s", ep.name, e)
                        continue
                    self._port_holders.setdefault(ep.container_id, []).append(self._hold(ep, p, sock))
            if n.user_defined:
                try:
                    self.dns.listen(ep.container_id, path)
                except OSError as e:
                    log.warning("restoring the DNS listener of %s: %s", ep.name, e)
