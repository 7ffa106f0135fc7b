"""Published ports of a container's endpoint: host ports reserved, held by the userland proxy or left to
the kernel's DNAT, and the iptables rules for them.

A part of ``NetworkService`` (service.py), kept apart for size; it shares the service's state.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from . import iptables, ports, proxy
from .records import Endpoint, Network


log = logging.getLogger("dockyard.network")


class PortPublishing:
    def _publish_ports(self, n: Network, ep: Endpoint, container: Any) -> None:
        bindings = ports.wanted(container.host_config, container.config.get("ExposedPorts"))
        if not bindings:
            return
        if n.internal:
            return
        socks: list[socket.socket] = []
        published: list[dict[str, Any]] = []
        try:
            target = container.name.lstrip("/") + f" ({ep.endpoint_id[:12]})"
            for b in bindings:
                host_port, sock = ports.reserve(b, target, listen=self.config.userland_proxy)
                socks.append(sock)
                published.append({"proto": b.proto, "port": b.port, "host_ip": b.host_ip, "host_port": host_port})
                # dockerd's: the proxy carries [::] to a container without IPv6 on its IPv4 address
                twin = ports.ipv6_twin(b, host_port) if ep.address6 or self.config.userland_proxy else None
                if twin is not None and ports.ipv6_available():
                    socks.append(ports.reserve(twin, target, listen=self.config.userland_proxy)[1])
                    published.append({"proto": b.proto, "port": b.port, "host_ip": "::", "host_port": host_port})
            rules = [r for p in published for r in self._port_rules(n, ep, p)]
            try:
                self.iptables.add(rules)
            except iptables.IptablesError as e:
                # a chain deleted under the daemon: the chains, jumps and network rules made again
                log.warning("network %s: %s; setting up its rules again", n.name, e)
                self.iptables.reset()
                with self._lock:
                    self._bring_up(n)
                self.iptables.add(rules)
        except BaseException:
            for s in socks:
                s.close()
            raise
        ep.ports = published
        self._port_holders[container.id] = [self._hold(ep, p, s) for p, s in zip(published, socks)]

    def _hold(self, ep: Endpoint, p: dict[str, Any], sock: socket.socket) -> socket.socket | proxy.Proxy:
        """The reserved socket, served by the userland proxy unless the daemon runs without it."""
        if not self.config.userland_proxy:
            return sock
        # a port on an IPv6 host address reaches a container without IPv6 on its IPv4 address, as docker-proxy
        address = ep.address6 if ":" in p["host_ip"] and ep.address6 else ep.address
        return proxy.start(p["proto"], sock, (str(ipaddress.ip_interface(address).ip), p["port"]))

    def _port_rules(self, n: Network, ep: Endpoint, p: dict[str, Any],
                    userland_proxy: bool | None = None) -> list[iptables.Rule]:
        proxied = self.config.userland_proxy if userland_proxy is None else userland_proxy
        if ":" in p["host_ip"]:  # IPv6: DNAT to the container's IPv6 address; without one the proxy carries it
            if not ep.address6:
                return []
            return iptables.port_rules6(n.bridge, p["proto"], p["host_ip"], p["host_port"],
                                        str(ipaddress.ip_interface(ep.address6).ip), p["port"])
        return iptables.port_rules(n.bridge, p["proto"], p["host_ip"], p["host_port"],
                                   str(ipaddress.ip_interface(ep.address).ip), p["port"], proxied)
