"""Published ports: parsing the bindings, reserving host ports, what ``inspect`` and ``ps`` show of them."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any

from .. import errors


@dataclass
class Binding:
    proto: str
    port: int  # in the container
    host_ip: str
    host_ports: tuple[int, int]  # (0, 0): ephemeral


def _port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return int(port), (proto or "tcp").lower()


def wanted(host_config: dict[str, Any], exposed: dict[str, Any] | None) -> list[Binding]:
    """From PortBindings, plus every exposed port when PublishAllPorts (-P)."""
    bindings: dict[str, list[dict[str, str]]] = dict(host_config.get("PortBindings") or {})
    if host_config.get("PublishAllPorts"):
        for key in exposed or {}:
            bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    out = []
    for key, items in bindings.items():
        port, proto = _port_key(key)
        for item in items or [{"HostIp": "", "HostPort": ""}]:
            text = (item or {}).get("HostPort") or ""
            if text:
                lo, _, hi = text.partition("-")
                try:
                    rng = (int(lo), int(hi or lo))
                except ValueError:
                    raise errors.InvalidParameter(f"invalid port specification: \"{text}\"") from None
            else:
                rng = (0, 0)
            out.append(Binding(proto, port, (item or {}).get("HostIp") or "0.0.0.0", rng))
    return out


def reserve(binding: Binding, target: str, listen: bool) -> tuple[int, socket.socket]:
    """Bind the host port (held while the container runs, so nothing else takes it).

    ``listen``: the userland proxy serves it. A TCP listener then takes SO_REUSEADDR, as Go's
    listeners do, so the proxy's connections left in TIME_WAIT do not keep the port from the next
    container; while it listens no other socket can bind the port anyway.
    """
    tcp = binding.proto != "udp"
    v6 = ":" in binding.host_ip
    lo, hi = binding.host_ports
    last: OSError | None = None
    for port in range(lo, hi + 1) if lo else [0]:
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        try:
            if v6:  # "::" is IPv6 only: the port on 0.0.0.0 is the IPv4 binding's
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if listen and tcp:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((binding.host_ip, port))
            if listen and tcp:
                s.listen(128)
            return s.getsockname()[1], s
        except OSError as e:
            s.close()
            last = e
    shown = f"{lo}" if lo == hi else f"{lo}-{hi}"
    reason = "address already in use" if last and last.errno == errno.EADDRINUSE else str(last)
    raise errors.SystemError_(
        f"failed to set up container networking: driver failed programming external connectivity on "
        f"endpoint {target}: failed to bind host port for {binding.host_ip}:{shown}:{binding.port}/"
        f"{binding.proto}: {reason}")


def ipv6_twin(binding: Binding, host_port: int) -> Binding | None:
    """dockerd's IPv6 binding beside one on every IPv4 address (0.0.0.0): on ``::``, same host port."""
    if binding.host_ip != "0.0.0.0":
        return None
    return Binding(binding.proto, binding.port, "::", (host_port, host_port))


def ipv6_available() -> bool:
    """False on a host without IPv6 (the module absent or disabled), where dockerd publishes on IPv4 only."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6", encoding="ascii") as f:
            return socket.has_ipv6 and f.read().strip() == "0"
    except OSError:
        return False


def settings(ports: list[dict[str, Any]], exposed: dict[str, Any] | None) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port, with its host bindings or null."""
    out: dict[str, Any] = {k if "/" in k else k + "/tcp": None for k in exposed or {}}
    for p in ports:
        key = f"{p['port']}/{p['proto']}"
        out.setdefault(key, None)
        out[key] = (out[key] or []) + [{"HostIp": p["host_ip"], "HostPort": str(p["host_port"])}]
    return out


def summary(ports: list[dict[str, Any]], exposed: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``Ports`` of a container list entry (the ps PORTS column)."""
    out = [{"IP": p["host_ip"], "PrivatePort": p["port"], "PublicPort": p["host_port"], "Type": p["proto"]}
           for p in ports]
    published = {(p["port"], p["proto"]) for p in ports}
    for key in exposed or {}:
        port, proto = _port_key(key)
        if (port, proto) not in published:
            out.append({"PrivatePort": port, "Type": proto})
    return out
