"""This host's names and addresses, for a server certificate's SANs.

Read from /proc rather than by shelling out to `ip`: /proc/net/fib_trie lists
every local IPv4 address (secondary ones included) and /proc/net/if_inet6
every IPv6 one.
"""

from __future__ import annotations

import ipaddress
import socket

from .pki import IPAddress


def names() -> list[str]:
    """Short hostname, FQDN and localhost, in that order, without repeats."""
    found = [socket.gethostname(), socket.getfqdn(), "localhost"]
    return list(dict.fromkeys(n for n in found if n))


def addresses() -> list[IPAddress]:
    """Every address configured on this host (loopback included), except IPv6 link-local
    ones, which no client can name without a zone."""
    out: list[IPAddress] = [ipaddress.ip_address("127.0.0.1")]
    out += _ipv4_local()
    out += [a for a in _ipv6_local() if not a.is_link_local]
    return list(dict.fromkeys(out))


def _ipv4_local() -> list[ipaddress.IPv4Address]:
    # fib_trie: an address line "|-- 10.0.0.5" followed by "/32 host LOCAL" marks a local address.
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found: list[ipaddress.IPv4Address] = []
    for prev, line in zip(lines, lines[1:]):
        if line.strip().startswith("/32 host LOCAL") and "|--" in prev:
            found.append(ipaddress.IPv4Address(prev.split("|--")[1].strip()))
    return sorted(set(found), key=lambda a: (a.is_loopback, int(a)))


def _ipv6_local() -> list[ipaddress.IPv6Address]:
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            rows = f.read().splitlines()
    except OSError:
        return []
    found = [ipaddress.IPv6Address(int(row.split()[0], 16)) for row in rows if row.split()]
    return sorted(set(found), key=lambda a: (a.is_loopback, int(a)))
