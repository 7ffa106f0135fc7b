"""The pending requests of the streaming server, each behind a one-time token in its URL.

An Exec, Attach or PortForward RPC stores what it was asked and answers a URL; the kubelet then
connects to that URL. The token is the only thing that ties the connection to the RPC (the streaming
port has no other authentication), so it is unguessable, good for one connection, and short-lived:
one minute, as the kubelet's and containerd's request caches.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

from ... import errors

TTL = 60.0
# as the kubelet's cache: past this many requests not yet used, new ones are refused
MAX_IN_FLIGHT = 1000
TOKEN_BYTES = 16

T = TypeVar("T")


class RequestCache(Generic[T]):
    def __init__(self, ttl: float = TTL, limit: int = MAX_IN_FLIGHT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()  # RPCs may store from any thread
        self._pending: OrderedDict[str, tuple[float, T]] = OrderedDict()  # in order of expiry

    def insert(self, request: T) -> str:
        with self._lock:
            self._expire()
            if len(self._pending) >= self.limit:
                raise errors.Unavailable(f"too many streaming requests in flight ({self.limit})")
            token = secrets.token_urlsafe(TOKEN_BYTES)
            self._pending[token] = (self.clock() + self.ttl, request)
            return token

    def consume(self, token: str) -> T | None:
        """The request behind ``token``, which is then spent; None if unknown, spent or expired."""
        with self._lock:
            self._expire()
            entry = self._pending.pop(token, None)
        return entry[1] if entry is not None else None

    def _expire(self) -> None:
        now = self.clock()
        while self._pending:
            token, (deadline, _) = next(iter(self._pending.items()))
            if deadline > now:
                return
            del self._pending[token]
