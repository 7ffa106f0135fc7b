"""Opening a session with a registry: pick the endpoint that answers, learn its auth challenge.

Plain-HTTP registries (loopback, insecure) are tried over HTTPS first, like
dockerd does; the endpoint that worked is remembered per domain so later
requests go straight to it.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterator

from ..errors import Unavailable
from .auth import AuthConfig
from .client import RegistryUnreachable, Session, Transport
from .registries import Endpoint, RegistryConfig

log = logging.getLogger("dockyard.distribution")


class Sessions:
    def __init__(self, registries: RegistryConfig, transport: Transport) -> None:
        self.registries = registries
        self.transport = transport
        self._known: dict[str, Endpoint] = {}
        self._lock = threading.Lock()

    def open(self, domain: str, path: str, auth: AuthConfig, actions: tuple[str, ...] = ("pull",),
             push: bool = False) -> Session:
        """A pinged session on the first endpoint that speaks v2; Unavailable naming why if none does."""
        return next(self.iter_open(domain, path, auth, actions, push))

    def iter_open(self, domain: str, path: str, auth: AuthConfig, actions: tuple[str, ...] = ("pull",),
                  push: bool = False, by_digest: bool = False) -> Iterator[Session]:
        """Pinged sessions, mirrors first, for callers that fall back when a mirror lacks the content.

        Without ``by_digest`` the caller names things by tag, so only endpoints trusted to resolve serve it.
        """
        if push:
            candidates = self.registries.push_endpoints(domain)
        else:
            candidates = self.registries.endpoints(domain, "pull" if by_digest else "resolve")
        with self._lock:
            known = self._known.get(domain)
        if known in candidates:
            candidates = [c for c in candidates if c.mirror] + [known] + \
                [c for c in candidates if c != known and not c.mirror]
        errors: list[str] = []
        for endpoint in candidates:
            try:
                session = Session(self.transport, endpoint, path, auth, actions)
                session.ping()
            except RegistryUnreachable as e:
                if endpoint.mirror:  # the error the pull reports is the upstream's: say why this one was passed
                    log.info("registry %s: mirror %s skipped: %s", domain, endpoint.url, e)
                errors.append(str(e))
                continue
            if not endpoint.mirror:
                with self._lock:
                    self._known[domain] = endpoint
            yield session
        raise Unavailable(errors[-1] if errors else f"no endpoint for registry {domain} can "
                          f"{'push' if push else 'pull' if by_digest else 'resolve'}")
