"""dockyard's iptables rules: all of them live in chains of its own, so teardown deletes exactly them.

Several daemons (a test suite starts many) may share the chains; each only adds
and deletes rules naming its own bridges, and the jumps from the built-in chains
are added once. Rules are applied in batches through ``iptables-restore
--noflush`` (one process for many rules).

Loopback: nothing the host's own OUTPUT sends to 127.0.0.0/8 enters the DNAT chain (as
dockerd's with its userland proxy: DNAT out of a bridge with a loopback source needs
``route_localnet=1``, which lets containers reach the host's loopback services). A daemon
run with ``--userland-proxy=false`` puts its loopback DNAT in a chain of its own, jumped to
from OUTPUT only. Either way every bridge drops, in the raw table, what it brings for 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
import threading
from dataclasses import dataclass

log = logging.getLogger("dockyard.network")

NAT_CHAIN = "DOCKYARD"
LOOPBACK_CHAIN = "DOCKYARD-LOOPBACK"
RAW_CHAIN = "DOCKYARD-RAW"
POSTROUTING_CHAIN = "DOCKYARD-POSTROUTING"
FORWARD_CHAIN = "DOCKYARD-FORWARD"
ISOLATION_1 = "DOCKYARD-ISOLATION-1"
ISOLATION_2 = "DOCKYARD-ISOLATION-2"

_CHAINS = {"nat": (NAT_CHAIN, LOOPBACK_CHAIN, POSTROUTING_CHAIN),
           "filter": (FORWARD_CHAIN, ISOLATION_1, ISOLATION_2), "raw": (RAW_CHAIN,)}
# (table, built-in chain, rule args, insert first?)
_JUMPS = (
    ("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}", False),
    ("nat", "OUTPUT", f"! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {NAT_CHAIN}", False),
    ("nat", "OUTPUT", f"-d 127.0.0.0/8 -j {LOOPBACK_CHAIN}", False),
    ("raw", "PREROUTING", f"-j {RAW_CHAIN}", True),
    ("nat", "POSTROUTING", f"-j {POSTROUTING_CHAIN}", False),
    ("filter", "FORWARD", f"-j {FORWARD_CHAIN}", True),
    ("filter", FORWARD_CHAIN, f"-j {ISOLATION_1}", True),
)
# jumps earlier versions added: this one DNAT'd the host's loopback traffic out of the bridges
_RETIRED_JUMPS = (("nat", "OUTPUT", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}"),)


class IptablesError(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    args: str

    def line(self, op: str) -> str:
        return f"{op} {self.chain} {self.args}"


def _run(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=input_text, capture_output=True, text=True)


class Iptables:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._ready = False

    def setup(self) -> None:
        """The chains and the jumps into them; idempotent."""
        if not self.enabled or self._ready:
            return
        with self._lock:
            for table, chains in _CHAINS.items():
                for chain in chains:
                    _run("iptables", "-w", "-t", table, "-N", chain)  # exists already: fine
            for table, chain, args in _RETIRED_JUMPS:
                _run("iptables", "-w", "-t", table, "-D", chain, *args.split())  # absent: fine
            for table, chain, args, first in _JUMPS:
                if _run("iptables", "-w", "-t", table, "-C", chain, *args.split()).returncode != 0:
                    op = ["-I", chain, "1"] if first else ["-A", chain]
                    res = _run("iptables", "-w", "-t", table, *op, *args.split())
                    if res.returncode != 0:
                        raise IptablesError(f"iptables: {res.stderr.strip()}")
            self._ready = True

    def reset(self) -> None:
        """Check the chains and jumps again at the next change (something outside deleted them)."""
        self._ready = False

    def add(self, rules: list[Rule]) -> None:
        if not self.enabled or not rules:
            return
        self.setup()
        self._batch(rules, "-A")

    def insert(self, rules: list[Rule]) -> None:
        """Before the chain's other rules (in the order given)."""
        if not self.enabled or not rules:
            return
        self.setup()
        self._batch(list(reversed(rules)), "-I")

    def delete(self, rules: list[Rule]) -> None:
        """Each rule that is there; a missing one is not an error."""
        if not self.enabled or not rules:
            return
        try:
            self._batch(rules, "-D")
        except IptablesError:
            for rule in rules:
                _run("iptables", "-w", "-t", rule.table, "-D", rule.chain, *rule.args.split())

    def _batch(self, rules: list[Rule], op: str) -> None:
        text = []
        for table in sorted({r.table for r in rules}):
            text.append(f"*{table}")
            text += [r.line(op) for r in rules if r.table == table]
            text.append("COMMIT")
        res = _run("iptables-restore", "-w", "--noflush", input_text="\n".join(text) + "\n")
        if res.returncode != 0:
            raise IptablesError(f"iptables-restore: {res.stderr.strip()}")


def network_rules(bridge: str, subnet: str, internal: bool, userland_proxy: bool) -> list[Rule]:
    """What one bridge network needs: forwarding, isolation from other networks, masquerade."""
    rules = [
        Rule("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j {ISOLATION_2}"),
        Rule("filter", ISOLATION_2, f"-o {bridge} -j DROP"),
        Rule("nat", NAT_CHAIN, f"-i {bridge} -j RETURN"),
        # a container has no business sending to 127.0.0.0/8 through its gateway (CVE-2020-8558); with
        # route_localnet=0 the kernel drops it as a martian anyway, without the proxy this is the guard
        Rule("raw", RAW_CHAIN, f"-d 127.0.0.0/8 -i {bridge} -j DROP"),
    ]
    if not userland_proxy:
        # loopback-published ports DNAT'd from the host: the container must see a source it can answer
        rules.append(Rule("nat", POSTROUTING_CHAIN,
                          f"-s 127.0.0.0/8 -o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE"))
    if internal:
        rules += [Rule("filter", FORWARD_CHAIN, f"-i {bridge} -o {bridge} -j ACCEPT")]
    else:
        rules += [
            Rule("filter", FORWARD_CHAIN, f"-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
            Rule("filter", FORWARD_CHAIN, f"-o {bridge} -m conntrack --ctstate DNAT -j ACCEPT"),
            Rule("filter", FORWARD_CHAIN, f"-i {bridge} -j ACCEPT"),
            Rule("nat", POSTROUTING_CHAIN, f"-s {subnet} ! -o {bridge} -j MASQUERADE"),
        ]
    return rules


def internal_drop_rules(bridge: str) -> list[Rule]:
    """For --internal: nothing in or out past the bridge (inserted ahead of the isolation jump)."""
    return [Rule("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j DROP"),
            Rule("filter", ISOLATION_1, f"-o {bridge} ! -i {bridge} -j DROP")]


def port_rules(bridge: str, proto: str, host_ip: str, host_port: int, addr: str, port: int,
               userland_proxy: bool) -> list[Rule]:
    """The DNAT of one published port (moby's layout), and the guards of one published on loopback."""
    any_ip = host_ip in ("", "0.0.0.0")
    loopback = not any_ip and ipaddress.ip_address(host_ip).is_loopback
    dest = "" if any_ip else f"-d {host_ip}/32 "
    match = f"-p {proto} -m {proto} --dport {host_port}"
    dnat = f"{match} -j DNAT --to-destination {addr}:{port}"
    rules = [Rule("nat", NAT_CHAIN, f"{dest}! -i {bridge} {dnat}")]
    if loopback:
        # only the host itself may reach a port published on loopback: DNAT in PREROUTING would
        # otherwise forward what a neighbour or another bridge sends to 127.0.0.1 (moby's rule too)
        rules.append(Rule("raw", RAW_CHAIN, f"-d {host_ip}/32 ! -i lo {match} -j DROP"))
    if not userland_proxy and (any_ip or loopback):
        rules.append(Rule("nat", LOOPBACK_CHAIN, f"{dest}{dnat}"))
    return rules


def enable_ip_forward() -> None:
    path = "/proc/sys/net/ipv4/ip_forward"
    with open(path, encoding="ascii") as f:
        if f.read().strip() == "1":
            return
    with open(path, "w", encoding="ascii") as f:
        f.write("1")
    log.info("enabled IPv4 forwarding (net.ipv4.ip_forward=1) for container networking")
