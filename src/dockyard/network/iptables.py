"""dockyard's iptables rules: all of them live in chains of its own, so teardown deletes exactly them.

Several daemons (a test suite starts many) may share the chains; each only adds
and deletes rules naming its own bridges, and the jumps from the built-in chains
are added once. Rules are applied in batches through ``iptables-restore
--noflush`` (one process for many rules).

IPv6 networks get the same layout in ip6tables (``Rule.family`` 6), only when the daemon runs
with ``ip6tables`` (dockerd 20.10's experimental option, default false): forwarding, isolation,
masquerade of the network's IPv6 subnet and the DNAT of published ports. There is no loopback
part: the kernel never routes ::1 out of the host, so the host's own connections to [::1] reach
the userland proxy.

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
_CHAINS6 = {"nat": (NAT_CHAIN, POSTROUTING_CHAIN), "filter": (FORWARD_CHAIN, ISOLATION_1, ISOLATION_2)}
_JUMPS6 = (
    ("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}", False),
    ("nat", "OUTPUT", f"! -d ::1/128 -m addrtype --dst-type LOCAL -j {NAT_CHAIN}", False),
    ("nat", "POSTROUTING", f"-j {POSTROUTING_CHAIN}", False),
    ("filter", "FORWARD", f"-j {FORWARD_CHAIN}", True),
    ("filter", FORWARD_CHAIN, f"-j {ISOLATION_1}", True),
)
_COMMANDS = {4: "iptables", 6: "ip6tables"}
# jumps earlier versions added: this one DNAT'd the host's loopback traffic out of the bridges
_RETIRED_JUMPS = (("nat", "OUTPUT", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}"),)


class IptablesError(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    args: str
    family: int = 4  # 6: an ip6tables rule

    def line(self, op: str) -> str:
        return f"{op} {self.chain} {self.args}"


def _run(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=input_text, capture_output=True, text=True)


class Iptables:
    """IPv4 and IPv6 rules: ``enabled`` for iptables, ``ip6_enabled`` for ip6tables (the rules of a family
    that is off are left out, and its command never runs)."""

    def __init__(self, enabled: bool = True, ip6_enabled: bool = False) -> None:
        self._enabled = {4: enabled, 6: ip6_enabled}
        self._lock = threading.Lock()
        self._ready = {4: False, 6: False}

    def setup(self, family: int = 4) -> None:
        """The chains and the jumps into them; idempotent."""
        if not self._enabled[family] or self._ready[family]:
            return
        cmd = _COMMANDS[family]
        chains, jumps, retired = (_CHAINS, _JUMPS, _RETIRED_JUMPS) if family == 4 else (_CHAINS6, _JUMPS6, ())
        with self._lock:
            for table, names in chains.items():
                for chain in names:
                    _run(cmd, "-w", "-t", table, "-N", chain)  # exists already: fine
            for table, chain, args in retired:
                _run(cmd, "-w", "-t", table, "-D", chain, *args.split())  # absent: fine
            for table, chain, args, first in jumps:
                if _run(cmd, "-w", "-t", table, "-C", chain, *args.split()).returncode != 0:
                    op = ["-I", chain, "1"] if first else ["-A", chain]
                    res = _run(cmd, "-w", "-t", table, *op, *args.split())
                    if res.returncode != 0:
                        raise IptablesError(f"{cmd}: {res.stderr.strip()}")
            self._ready[family] = True

    def reset(self) -> None:
        """Check the chains and jumps again at the next change (something outside deleted them)."""
        self._ready = {4: False, 6: False}

    def add(self, rules: list[Rule]) -> None:
        for family, own in self._by_family(rules):
            self.setup(family)
            self._batch(family, own, "-A")

    def insert(self, rules: list[Rule]) -> None:
        """Before the chain's other rules (in the order given)."""
        for family, own in self._by_family(rules):
            self.setup(family)
            self._batch(family, list(reversed(own)), "-I")

    def delete(self, rules: list[Rule]) -> None:
        """Each rule that is there; a missing one is not an error."""
        for family, own in self._by_family(rules):
            try:
                self._batch(family, own, "-D")
            except IptablesError:
                for rule in own:
                    _run(_COMMANDS[family], "-w", "-t", rule.table, "-D", rule.chain, *rule.args.split())

    def _by_family(self, rules: list[Rule]) -> list[tuple[int, list[Rule]]]:
        out = []
        for family in (4, 6):
            own = [r for r in rules if r.family == family]
            if own and self._enabled[family]:
                out.append((family, own))
        return out

    def _batch(self, family: int, rules: list[Rule], op: str) -> None:
        text = []
        for table in sorted({r.table for r in rules}):
            text.append(f"*{table}")
            text += [r.line(op) for r in rules if r.table == table]
            text.append("COMMIT")
        cmd = f"{_COMMANDS[family]}-restore"
        res = _run(cmd, "-w", "--noflush", input_text="\n".join(text) + "\n")
        if res.returncode != 0:
            raise IptablesError(f"{cmd}: {res.stderr.strip()}")


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


def network_rules6(bridge: str, subnet6: str, internal: bool) -> list[Rule]:
    """An IPv6 network's ip6tables rules: those of ``network_rules`` without the loopback guards."""
    rules = [Rule("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j {ISOLATION_2}", 6),
             Rule("filter", ISOLATION_2, f"-o {bridge} -j DROP", 6),
             Rule("nat", NAT_CHAIN, f"-i {bridge} -j RETURN", 6)]
    if internal:
        return rules + [Rule("filter", FORWARD_CHAIN, f"-i {bridge} -o {bridge} -j ACCEPT", 6)]
    return rules + [
        Rule("filter", FORWARD_CHAIN, f"-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", 6),
        Rule("filter", FORWARD_CHAIN, f"-o {bridge} -m conntrack --ctstate DNAT -j ACCEPT", 6),
        Rule("filter", FORWARD_CHAIN, f"-i {bridge} -j ACCEPT", 6),
        Rule("nat", POSTROUTING_CHAIN, f"-s {subnet6} ! -o {bridge} -j MASQUERADE", 6),
    ]


def internal_drop_rules(bridge: str, family: int = 4) -> list[Rule]:
    """For --internal: nothing in or out past the bridge (inserted ahead of the isolation jump)."""
    return [Rule("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j DROP", family),
            Rule("filter", ISOLATION_1, f"-o {bridge} ! -i {bridge} -j DROP", family)]


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


def port_rules6(bridge: str, proto: str, host_ip: str, host_port: int, addr6: str, port: int) -> list[Rule]:
    """The ip6tables DNAT of one port published on IPv6 (``::``: every address of the host)."""
    dest = "" if host_ip == "::" else f"-d {host_ip}/128 "
    return [Rule("nat", NAT_CHAIN, f"{dest}! -i {bridge} -p {proto} -m {proto} --dport {host_port} "
                                   f"-j DNAT --to-destination [{addr6}]:{port}", 6)]


def enable_ip_forward() -> None:
    _enable("/proc/sys/net/ipv4/ip_forward", "IPv4 forwarding (net.ipv4.ip_forward=1)")


def enable_ip6_forward() -> None:
    """As dockerd for a network with an IPv6 subnet: the kernel routes IPv6 between the bridge and the host's
    interfaces only with it (and then ignores router advertisements on interfaces with accept_ra=1)."""
    for conf in ("default", "all"):
        _enable(f"/proc/sys/net/ipv6/conf/{conf}/forwarding", f"IPv6 forwarding (net.ipv6.conf.{conf}.forwarding=1)")


def _enable(path: str, what: str) -> None:
    with open(path, encoding="ascii") as f:
        if f.read().strip() == "1":
            return
    with open(path, "w", encoding="ascii") as f:
        f.write("1")
    log.info("enabled %s for container networking", what)
