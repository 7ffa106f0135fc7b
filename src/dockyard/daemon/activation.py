"""``-H fd://`` and ``-H fd://NAME``: API sockets the init system opened and passed in.

systemd's socket-activation protocol (sd_listen_fds(3)): the sockets are file
descriptors 3, 4, ... of the process, ``LISTEN_FDS`` says how many,
``LISTEN_PID`` which process they are meant for (a child that inherited the
environment must not take them), ``LISTEN_FDNAMES`` their ``FileDescriptorName=``s,
colon-separated. Everything is checked here, before the daemon makes anything
on the host, so that a unit file that does not match the daemon's hosts stops
it with a message naming the mismatch rather than leaving a socket unserved.

As dockerd: ``fd://`` (or ``fd://*``) takes every passed socket, ``fd://N`` the
one at descriptor N; in addition ``fd://NAME`` takes those named NAME. Unlike
dockerd, a passed socket that no host takes is an error (dockerd ignores it, and
clients of that socket then hang until systemd's timeout).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import MutableMapping

from ..config import ConfigError

SD_LISTEN_FDS_START = 3
# Far more than any unit passes; bounds the descriptors probed for a LISTEN_FDS that is garbage.
MAX_LISTEN_FDS = 64
_FAMILIES = {socket.AF_UNIX: "unix", socket.AF_INET: "tcp", socket.AF_INET6: "tcp"}


@dataclass
class Activated:
    """One passed listening socket: its descriptor, name, and ``unix`` or ``tcp``."""

    sock: socket.socket
    fd: int
    name: str
    kind: str

    def describe(self) -> str:
        addr = self.sock.getsockname()
        where = (addr.decode(errors="replace") if isinstance(addr, bytes) else addr) if self.kind == "unix" \
            else "%s:%d" % addr[:2]
        return f"fd {self.fd} ({self.name}, {self.kind} {where or '(unnamed)'})"


def passed_sockets(needed: bool, env: MutableMapping[str, str] | None = None) -> list[Activated]:
    """The sockets passed to this process, checked to be listening stream sockets.

    ``needed``: an ``fd://`` host is configured, so activation meant for another
    process (``LISTEN_PID``) is an error rather than ignored. The ``LISTEN_*``
    variables are removed from ``env`` (``os.environ`` by default) so that runc,
    conmon and the containers do not inherit them.
    """
    env = os.environ if env is None else env
    pid, count, names = (env.pop(k, None) for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"))
    if count is None:
        return []
    if pid is None or not pid.isdigit() or int(pid) != os.getpid():
        if not needed:
            return []  # as sd_listen_fds: left over from a parent, not for us
        raise ConfigError(f"socket activation: LISTEN_PID={pid} is not this process ({os.getpid()}): the "
                          "sockets were meant for another process (was dockyardd started through a wrapper "
                          "that forks?)")
    if not count.isdigit() or not 0 < int(count) <= MAX_LISTEN_FDS:
        raise ConfigError(f"socket activation: invalid LISTEN_FDS={count!r} (1 to {MAX_LISTEN_FDS})")
    n = int(count)
    fdnames = names.split(":") if names else []
    if fdnames and len(fdnames) != n:
        raise ConfigError(f"socket activation: LISTEN_FDNAMES has {len(fdnames)} names for {n} sockets")
    return [_adopt(SD_LISTEN_FDS_START + i, fdnames[i] if fdnames else "unknown") for i in range(n)]


def _adopt(fd: int, name: str) -> Activated:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        raise ConfigError(f"socket activation: fd {fd} ({name}) is not a socket: {e.strerror or e}") from None
    kind = _FAMILIES.get(sock.family)
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if kind is None or sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()  # not ours to close: it is reported, and the process exits
        raise ConfigError(f"socket activation: fd {fd} ({name}) is not a listening unix or TCP stream socket "
                          "(ListenStream= in the .socket unit, Accept=no)")
    # passed without close-on-exec by design; runc and the shims must not hold the API socket open
    os.set_inheritable(fd, False)
    return Activated(sock, fd, name, kind)


def select(hosts: list[str], passed: list[Activated]) -> dict[str, list[Activated]]:
    """Each ``fd://`` host → the passed sockets it serves; every passed socket served exactly once."""
    fd_hosts = [h for h in hosts if h.startswith("fd://")]
    if not fd_hosts:
        if passed:
            raise ConfigError(f"socket activation passed {len(passed)} socket(s) ({_list(passed)}) but no "
                              "-H fd:// host takes them: add -H fd:// (every socket) or -H fd://NAME")
        return {}
    if not passed:
        raise ConfigError(f"{fd_hosts[0]}: no sockets found via socket activation (LISTEN_FDS is not set): "
                          "start dockyardd from its .socket unit (systemctl start dockyard.socket) or with "
                          "systemd-socket-activate")
    out: dict[str, list[Activated]] = {}
    taken: dict[int, str] = {}
    for host in fd_hosts:
        if host in out:
            raise ConfigError(f"{host} is given twice")
        want = host[len("fd://"):].rstrip("/")
        if want in ("", "*"):
            chosen = passed
        else:
            chosen = [a for a in passed if a.name == want]
            if not chosen and want.isdigit():  # dockerd's fd://N: the descriptor number
                chosen = [a for a in passed if a.fd == int(want)]
            if not chosen:
                raise ConfigError(f"{host}: no socket named {want!r} was passed by socket activation "
                                  f"(passed: {_list(passed)}); FileDescriptorName= in the .socket unit "
                                  "names them")
        for a in chosen:
            if a.fd in taken:
                raise ConfigError(f"{host} and {taken[a.fd]} both take {a.describe()}")
            taken[a.fd] = host
        out[host] = chosen
    unserved = [a for a in passed if a.fd not in taken]
    if unserved:
        raise ConfigError(f"socket activation passed more sockets than the -H hosts take: {_list(unserved)} "
                          "would never be served; add -H fd:// or -H fd://NAME for them, or drop them from "
                          "the .socket unit")
    return out


def _list(sockets: list[Activated]) -> str:
    return ", ".join(a.describe() for a in sockets)

