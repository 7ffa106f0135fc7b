"""sd_notify(3): telling the init system (``Type=notify``) when the daemon is ready, stopping, alive.

``NOTIFY_SOCKET`` names a unix datagram socket (``@name``: in the abstract
namespace). ``WATCHDOG_USEC`` asks for ``WATCHDOG=1`` at least that often;
the pings come from the daemon's event loop, so a loop that hangs stops them
and systemd restarts the daemon, which is what the watchdog is for.
Sending never fails the daemon: the init system not listening is logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import MutableMapping

log = logging.getLogger("dockyard.daemon")

# Watchdog intervals outside this are taken as a mistake in the unit rather than followed.
MIN_WATCHDOG_USEC = 100_000
MAX_WATCHDOG_USEC = 24 * 3600 * 1_000_000


class Notifier:
    """The init system's notification socket, as the daemon's environment named it."""

    def __init__(self, address: str, watchdog_usec: int = 0) -> None:
        # '@' is sd_notify's spelling of a leading NUL: the abstract namespace
        self.address: str | bytes = b"\0" + address[1:].encode() if address.startswith("@") else address
        self.watchdog_usec = watchdog_usec

    def send(self, state: str) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(state.encode(), self.address)
            return True
        except OSError as e:
            log.warning("sd_notify %s to %s: %s", state.split("\n", 1)[0], self.address, e.strerror or e)
            return False

    def ready(self) -> None:
        self.send(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=serving the API")

    def stopping(self) -> None:
        self.send("STOPPING=1\nSTATUS=shutting down")

    async def watchdog(self) -> None:
        """``WATCHDOG=1`` every half interval, as sd_watchdog_enabled(3) advises, until cancelled."""
        if not self.watchdog_usec:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_usec / 2_000_000)


def from_environment(env: MutableMapping[str, str] | None = None) -> Notifier | None:
    """The notifier ``NOTIFY_SOCKET`` asks for, or None; the variables are removed from ``env``
    (``os.environ`` by default) so that runc does not pass the daemon's socket on to containers."""
    env = os.environ if env is None else env
    address = env.pop("NOTIFY_SOCKET", "")
    usec, pid = env.pop("WATCHDOG_USEC", ""), env.pop("WATCHDOG_PID", "")
    if not address:
        return None
    if not (address.startswith("/") or address.startswith("@")) or len(address.encode()) > 107:
        log.warning("NOTIFY_SOCKET=%r is not a unix socket path or @abstract name; not notifying", address)
        return None
    watchdog = 0
    if usec and (not pid or pid == str(os.getpid())):  # WATCHDOG_PID names another process: not ours to ping
        if usec.isdigit() and MIN_WATCHDOG_USEC <= int(usec) <= MAX_WATCHDOG_USEC:
            watchdog = int(usec)
        else:
            log.warning("WATCHDOG_USEC=%r is not between %d and %d; not sending watchdog pings", usec,
                        MIN_WATCHDOG_USEC, MAX_WATCHDOG_USEC)
    return Notifier(address, watchdog)
