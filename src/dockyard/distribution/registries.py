"""Which URLs serve a registry domain: Docker Hub's host and mirrors, TLS or plain HTTP.

dockerd's rules: Docker Hub is served at ``registry-1.docker.io`` after any
``registry-mirrors``; a registry listed in ``insecure-registries`` (as
``host[:port]`` or by a CIDR its address falls in), and any loopback
registry, is tried over HTTPS without verification and then over plain HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from ..errors import InvalidParameter
from ..util.reference import DEFAULT_DOMAIN

DOCKER_HUB_HOST = "registry-1.docker.io"
# What the CLI stores credentials under for Docker Hub, and sends as serveraddress.
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"
_LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


@dataclass(frozen=True)
class Endpoint:
    url: str  # scheme://host[:port], no trailing slash
    verify_tls: bool = True
    mirror: bool = False

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")


class RegistryConfig:
    def __init__(self, mirrors: list[str], insecure: list[str]) -> None:
        self.mirrors = [_mirror_url(m) for m in mirrors]
        self.insecure_hosts: set[str] = set()
        self.insecure_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(_LOOPBACK)
        for entry in insecure:
            entry = entry.removeprefix("http://").removeprefix("https://").rstrip("/")
            try:
                self.insecure_nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.insecure_hosts.add(entry)

    def is_insecure(self, host: str) -> bool:
        """``host`` is ``name[:port]`` as written in a reference."""
        if host in self.insecure_hosts:
            return True
        name = _hostname(host)
        if name in self.insecure_hosts:
            return True
        for address in _addresses(name):
            if any(address in net for net in self.insecure_nets):
                return True
        return False

    def endpoints(self, domain: str) -> list[Endpoint]:
        if domain == DEFAULT_DOMAIN:
            return [Endpoint(m, mirror=True) for m in self.mirrors] + [Endpoint(f"https://{DOCKER_HUB_HOST}")]
        if self.is_insecure(domain):
            return [Endpoint(f"https://{domain}", verify_tls=False), Endpoint(f"http://{domain}")]
        return [Endpoint(f"https://{domain}")]

    def push_endpoints(self, domain: str) -> list[Endpoint]:
        """Mirrors are read-only: pushes go to the registry itself."""
        return [e for e in self.endpoints(domain) if not e.mirror]


def auth_domain(server_address: str) -> str:
    """The registry domain a ``docker login`` server address names."""
    addr = server_address.strip()
    for prefix in ("https://", "http://"):
        addr = addr.removeprefix(prefix)
    addr = addr.split("/", 1)[0]
    if addr in ("", "index.docker.io", "docker.io", DOCKER_HUB_HOST, "registry.hub.docker.com"):
        return DEFAULT_DOMAIN
    return addr


def _mirror_url(mirror: str) -> str:
    url = mirror.rstrip("/")
    if not (url.startswith("http://") or url.startswith("https://")):
        raise InvalidParameter(f"invalid mirror: unsupported scheme in {mirror!r}")
    return url


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _addresses(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    if name == "localhost":
        return [ipaddress.ip_address("127.0.0.1")]
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    out = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            continue
    return out
