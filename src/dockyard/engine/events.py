"""The engine's event log: what ``docker events`` streams.

Publishers are engine threads; subscribers are API handlers on the event loop
or plain threads, so delivery goes through a per-subscriber callback that the
subscriber makes safe for its own side. A bounded ring of recent events
serves ``--since``, as dockerd keeps its last events in memory.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

HISTORY = 1024


@dataclass
class Event:
    type: str  # container, image, network, volume, daemon, builder
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    scope: str = "local"
    time_nano: int = field(default_factory=time.time_ns)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        # The pre-1.22 fields that dockerd still sends for containers and images.
        if self.type in ("container", "image"):
            data["status"] = self.action
            data["id"] = self.actor_id
            if self.type == "container" and "image" in self.attributes:
                data["from"] = self.attributes["image"]
        return data


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self._subscribers: list[Subscriber] = []

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        event = Event(type_, action, actor_id, dict(attributes or {}))
        with self._lock:
            self._history.append(event)
            subscribers = list(self._subscribers)
        for deliver in subscribers:
            deliver(event)
        return event

    def subscribe(self, deliver: Subscriber, since_nano: int | None = None) -> list[Event]:
        """Register ``deliver`` and return the recorded events since ``since_nano``.

        Taken under one lock so that no event falls between the backlog and
        the live feed.
        """
        with self._lock:
            self._subscribers.append(deliver)
            if since_nano is None:
                return []
            return [e for e in self._history if e.time_nano >= since_nano]

    def history(self, since_nano: int) -> list[Event]:
        with self._lock:
            return [e for e in self._history if e.time_nano >= since_nano]

    def unsubscribe(self, deliver: Subscriber) -> None:
        with self._lock:
            if deliver in self._subscribers:
                self._subscribers.remove(deliver)
