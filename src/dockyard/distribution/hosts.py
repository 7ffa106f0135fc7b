"""containerd's registry hosts directory: ``<dir>/<registry>/hosts.toml`` and the certificates beside it.

``<registry>`` is the reference's domain with its port (``127.0.0.1:5000``, or
containerd's other spelling ``127.0.0.1_5000_``, which wins when both exist);
``_default`` serves registries without a directory of their own. A
``hosts.toml`` names the upstream (``server``, by default the registry
itself) and, in order, the hosts to try before it (``[host."<url>"]``), each
with its capabilities, CA files, client certificates, ``skip_verify``,
``header`` and ``override_path``. Without a ``hosts.toml`` the directory may
still hold dockerd-style certificates (``*.crt`` CAs, ``*.cert``/``*.key``
client pairs); they apply to the upstream, as they do when the ``hosts.toml``
gives the upstream no ``ca``/``client`` of its own.

The directory is read at each resolution, so an admin's edit takes effect on
the next pull. A file that cannot be used (too large, not TOML, a value of
the wrong kind) is logged and ignored: the registry is then reached as if it
had no file. containerd fails the pull instead; a daemon that reads the file
live may catch an editor's half-written save, and the log names the file.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger("dockyard.distribution")

HOSTS_FILE = "hosts.toml"
DEFAULT_NAMESPACE = "_default"
MAX_HOSTS_FILE = 64 * 1024
ALL_CAPABILITIES = frozenset({"pull", "resolve", "push"})


class HostsFileError(Exception):
    """A hosts.toml that cannot be used; the message says why."""


@dataclass(frozen=True)
class HostEntry:
    url: str  # as written: scheme optional, path optional; "" for the registry's own default upstream
    capabilities: frozenset[str] = ALL_CAPABILITIES
    ca: tuple[str, ...] = ()
    client: tuple[tuple[str, str | None], ...] = ()  # (cert, key); key None when the cert file holds both
    skip_verify: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    override_path: bool = False


@dataclass(frozen=True)
class HostsConfig:
    server: HostEntry
    hosts: list[HostEntry] = field(default_factory=list)


def load(config_dir: str, domain: str) -> HostsConfig | None:
    """The configuration for ``domain``, or None when the directory says nothing about it."""
    if not config_dir or not domain or "/" in domain or domain in (".", ".."):
        return None
    host_dir = next((d for d in (os.path.join(config_dir, n) for n in _namespaces(domain)) if os.path.isdir(d)),
                    None)
    if host_dir is None:
        return None
    ca_files, client_pairs = _cert_files(host_dir)
    config = None
    path = os.path.join(host_dir, HOSTS_FILE)
    try:
        config = _read(path, host_dir)
    except FileNotFoundError:
        pass
    except (OSError, HostsFileError) as e:
        log.warning("ignoring registry hosts file %s: %s", path, e)
    if config is None:
        if not ca_files and not client_pairs:
            return None
        return HostsConfig(HostEntry("", ca=ca_files, client=client_pairs))
    server = config.server
    if not server.ca and ca_files:
        server = replace(server, ca=ca_files)
    if not server.client and client_pairs:
        server = replace(server, client=client_pairs)
    return HostsConfig(server, config.hosts)


def _namespaces(domain: str) -> list[str]:
    """Directory names to look for, first found wins: containerd also spells ``host:5000`` ``host_5000_``."""
    names = [domain, DEFAULT_NAMESPACE]
    host, sep, port = domain.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        names.insert(0, f"{host}_{port}_")
    return names


def _read(path: str, base: str) -> HostsConfig:
    with open(path, "rb") as f:
        data = f.read(MAX_HOSTS_FILE + 1)
    if len(data) > MAX_HOSTS_FILE:
        raise HostsFileError(f"larger than {MAX_HOSTS_FILE // 1024} KiB")
    try:
        doc = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise HostsFileError(f"invalid TOML: {e}") from None
    server_url = doc.get("server", "")
    if not isinstance(server_url, str):
        raise HostsFileError("server must be a string")
    server = _entry(server_url.rstrip("/"), doc, base, "server")
    hosts_table = doc.get("host", {})
    if not isinstance(hosts_table, dict):
        raise HostsFileError("host must be a table of tables")
    hosts = []
    for url, table in hosts_table.items():  # tomllib keeps the file's order: the order hosts are tried in
        if not isinstance(table, dict):
            raise HostsFileError(f"host {url!r} must be a table")
        if not url.strip("/"):
            raise HostsFileError("a host needs a URL")
        hosts.append(_entry(url.rstrip("/"), table, base, f"host {url!r}"))
    return HostsConfig(server, hosts)


def _entry(url: str, table: dict[str, Any], base: str, where: str) -> HostEntry:
    if url and "://" in url and not url.startswith(("http://", "https://")):
        raise HostsFileError(f"{where}: unsupported scheme in {url!r}")
    capabilities = table.get("capabilities", sorted(ALL_CAPABILITIES))
    if not _strings(capabilities):
        raise HostsFileError(f"{where}: capabilities must be a list of strings")
    unknown = set(capabilities) - ALL_CAPABILITIES
    if unknown:
        raise HostsFileError(f"{where}: unknown capabilities {sorted(unknown)}")
    skip_verify = table.get("skip_verify", False)
    override_path = table.get("override_path", False)
    if not isinstance(skip_verify, bool) or not isinstance(override_path, bool):
        raise HostsFileError(f"{where}: skip_verify and override_path must be true or false")
    return HostEntry(url, frozenset(capabilities), _ca(table.get("ca"), base, where),
                     _client(table.get("client"), base, where), skip_verify,
                     _headers(table.get("header"), where), override_path)


def _ca(value: Any, base: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not _strings(value):
        raise HostsFileError(f"{where}: ca must be a path or a list of paths")
    return tuple(_resolve(p, base) for p in value)


def _client(value: Any, base: str, where: str) -> tuple[tuple[str, str | None], ...]:
    """``"cert.pem"``, ``["a.pem", ...]``, or ``[["a.cert", "a.key"], ...]`` as containerd accepts."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise HostsFileError(f"{where}: client must be a path, a list of paths or of [cert, key] pairs")
    out: list[tuple[str, str | None]] = []
    for item in value:
        if isinstance(item, str):
            out.append((_resolve(item, base), None))
        elif _strings(item) and len(item) == 2:
            out.append((_resolve(item[0], base), _resolve(item[1], base) if item[1] else None))
        else:
            raise HostsFileError(f"{where}: client must be a path, a list of paths or of [cert, key] pairs")
    return tuple(out)


def _headers(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise HostsFileError(f"{where}: header must be a table")
    out = []
    for name, v in value.items():
        if isinstance(v, str):
            v = [v]
        if not _strings(v) or any(c in s for s in [name, *v] for c in "\r\n"):
            raise HostsFileError(f"{where}: header {name!r} must be a string or a list of strings")
        out.append((name, ", ".join(v)))
    return tuple(out)


def _cert_files(host_dir: str) -> tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]:
    """dockerd's certs.d: every ``*.crt`` is a CA; ``x.cert`` needs its ``x.key`` beside it."""
    try:
        names = sorted(os.listdir(host_dir))
    except OSError:
        return (), ()
    cas = tuple(os.path.join(host_dir, n) for n in names if n.endswith(".crt"))
    pairs = []
    for n in names:
        if n.endswith(".cert"):
            key = n[:-len(".cert")] + ".key"
            if key in names:
                pairs.append((os.path.join(host_dir, n), os.path.join(host_dir, key)))
            else:
                log.warning("ignoring client certificate %s: no %s beside it", os.path.join(host_dir, n), key)
    return cas, tuple(pairs)


def _resolve(path: str, base: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base, path)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
