"""resolv.conf as libnetwork reads and writes it: the host's file, its servers, search domains and
options, and the file a container gets from its --dns, --dns-search and --dns-option."""

from __future__ import annotations

HOST_PATH = "/etc/resolv.conf"
# libnetwork's defaults when filtering the host's loopback servers leaves none
FALLBACK_SERVERS = ("8.8.8.8", "8.8.4.4")


def host() -> str:
    try:
        with open(HOST_PATH, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def for_container(servers: list[str], search: list[str], options: list[str], host_net: bool) -> str:
    """The file of a container outside user-defined networks, as libnetwork's setupDNS: with any of
    ``servers``, ``search``, ``options``, one built of them (each falling back to the host's); otherwise
    the host's, without the loopback servers a container's own namespace cannot reach."""
    text = host()
    if servers or search or options:
        return build(servers or nameservers(text), search or search_domains(text), options or options_of(text))
    return text if host_net else without_loopback(text)


def build(servers: list[str], search: list[str], options: list[str]) -> str:
    return (search_line(search) + "".join(f"nameserver {s}\n" for s in servers)
            + (f"options {' '.join(options)}\n" if options else ""))


def search_line(search: list[str]) -> str:
    # libnetwork: "--dns-search ." is no search line at all
    return f"search {' '.join(search)}\n" if search and " ".join(search).strip(" ") != "." else ""


def nameservers(text: str) -> list[str]:
    return [words[1] for words in _lines(text) if len(words) > 1 and words[0] == "nameserver"]


def search_domains(text: str) -> list[str]:
    """The last search line's domains (libnetwork's GetSearchDomains)."""
    return next((words[1:] for words in reversed(_lines(text)) if words[:1] == ["search"]), [])


def options_of(text: str) -> list[str]:
    """The last options line's options (libnetwork's GetOptions)."""
    return next((words[1:] for words in reversed(_lines(text)) if words[:1] == ["options"]), [])


def without_loopback(text: str) -> str:
    lines = []
    servers = 0
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1:
            if parts[1].startswith("127.") or parts[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += [f"nameserver {s}" for s in FALLBACK_SERVERS]
    return "\n".join(lines) + "\n"


def _lines(text: str) -> list[list[str]]:
    """Each line's words, comments dropped."""
    return [line.split("#", 1)[0].split(";", 1)[0].split() for line in text.splitlines()]
