"""Host state the CNI tests make outside dockyard: commands, the nat table, portmap's shared chains."""

from __future__ import annotations

import shlex
import subprocess


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def nat_rules() -> str:
    return sh("iptables", "-w", "-t", "nat", "-S").stdout


def remove_portmap_chains() -> None:
    """The portmap plugin's shared CNI-HOSTPORT-* chains and the jumps into them, which it never removes."""
    for rule in nat_rules().splitlines():
        if rule.startswith("-A ") and "-j CNI-HOSTPORT-" in rule and not rule.startswith("-A CNI-"):
            sh("iptables", "-w", "-t", "nat", "-D", *shlex.split(rule)[1:], check=False)
    for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"):
        sh("iptables", "-w", "-t", "nat", "-F", chain, check=False)
        sh("iptables", "-w", "-t", "nat", "-X", chain, check=False)
