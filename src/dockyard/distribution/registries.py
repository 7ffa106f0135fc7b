"""Which URLs serve a registry domain: Docker Hub's host and mirrors, TLS or plain HTTP.

dockerd's rules: Docker Hub is served at ``registry-1.docker.io`` after any
``registry-mirrors``; a registry listed in ``insecure-registries`` (as
``host[:port]`` or by a CIDR its address falls in), and any loopback
registry, is tried over HTTPS without verification and then over plain HTTP.

On top of those, containerd's hosts directory (hosts.py): a registry's
``hosts.toml`` hosts come first, in the file's order, then (for Docker Hub)
the ``registry-mirrors``, then its ``server``. Each endpoint carries the
capabilities it may be used for: a host without ``resolve`` serves only
content addressed by digest, one without ``push`` is never pushed to.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from ..errors import InvalidParameter
from ..util.reference import DEFAULT_DOMAIN
from . import hosts as hostsdir

DOCKER_HUB_HOST = "registry-1.docker.io"
# What the CLI stores credentials under for Docker Hub, and sends as serveraddress.
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"
_LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


_MIRROR_CAPABILITIES = frozenset({"pull", "resolve"})  # dockerd's mirrors are read-only


@dataclass(frozen=True)
class Endpoint:
    url: str  # scheme://host[:port][/path], no trailing slash
    verify_tls: bool = True
    # tried before the registry itself; a mirror lacking the content sends the pull on to the next endpoint
    mirror: bool = False
    capabilities: frozenset[str] = hostsdir.ALL_CAPABILITIES
    ca: tuple[str, ...] = ()  # CA files trusted besides the system's
    client: tuple[tuple[str, str | None], ...] = ()  # client certificate (cert, key) files
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request
    override_path: bool = False  # the URL's path is the API root itself, not where /v2 goes under

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")

    @property
    def api_root(self) -> str:
        return self.url if self.override_path else f"{self.url}/v2"


class RegistryConfig:
    def __init__(self, mirrors: list[str], insecure: list[str], hosts_dir: str = "") -> None:
        self.hosts_dir = hosts_dir
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

    def endpoints(self, domain: str, capability: str = "resolve") -> list[Endpoint]:
        """Where to go for ``capability`` on ``domain``, in the order to try them.

        The hosts directory is read on each call: a node's admin edits it live.
        """
        config = hostsdir.load(self.hosts_dir, domain)
        mirrors = [Endpoint(m, mirror=True, capabilities=_MIRROR_CAPABILITIES)
                   for m in self.mirrors] if domain == DEFAULT_DOMAIN else []
        if config is None:
            found = mirrors + self._upstream(domain)
        else:
            found = [e for h in config.hosts for e in self._from_entry(h, mirror=True)] + mirrors
            server = config.server
            if server.url.removeprefix("https://") == "docker.io":  # containerd's name for Hub's upstream
                found += [_endpoint(f"https://{DOCKER_HUB_HOST}", server, not server.skip_verify, mirror=False)]
            elif server.url:
                found += self._from_entry(server, mirror=False)
            else:
                found += [_endpoint(e.url, server, e.verify_tls and not server.skip_verify, mirror=False)
                          for e in self._upstream(domain)]
        return [e for e in found if capability in e.capabilities]

    def push_endpoints(self, domain: str) -> list[Endpoint]:
        """dockerd's mirrors are read-only, as is any hosts.toml host without the push capability."""
        return self.endpoints(domain, "push")

    def _upstream(self, domain: str) -> list[Endpoint]:
        if domain == DEFAULT_DOMAIN:
            return [Endpoint(f"https://{DOCKER_HUB_HOST}")]
        if self.is_insecure(domain):
            return [Endpoint(f"https://{domain}", verify_tls=False), Endpoint(f"http://{domain}")]
        return [Endpoint(f"https://{domain}")]

    def _from_entry(self, entry: hostsdir.HostEntry, mirror: bool) -> list[Endpoint]:
        """A URL with a scheme is taken as written; a bare host gets dockerd's insecure-registry rules."""
        if "://" in entry.url:
            return [_endpoint(entry.url, entry, not entry.skip_verify, mirror)]
        if self.is_insecure(entry.url.split("/", 1)[0]):
            return [_endpoint(f"https://{entry.url}", entry, False, mirror),
                    _endpoint(f"http://{entry.url}", entry, True, mirror)]
        return [_endpoint(f"https://{entry.url}", entry, not entry.skip_verify, mirror)]


def _endpoint(url: str, entry: hostsdir.HostEntry, verify_tls: bool, mirror: bool) -> Endpoint:
    return Endpoint(url, verify_tls=verify_tls, mirror=mirror, capabilities=entry.capabilities, ca=entry.ca,
                    client=entry.client, headers=entry.headers, override_path=entry.override_path)


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
