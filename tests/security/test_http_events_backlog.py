"""A `docker events` follower that does not read holds a bounded backlog in the daemon (issue 12, finding 6).

Each follower had an unbounded queue: one that stopped reading (a `docker
events` piped into a stopped process) kept every later event in the
daemon's memory. In process, with the daemon's event bus and stream.
"""

from __future__ import annotations

import asyncio

from dockyard.api import system
from dockyard.engine.events import EventBus


class _Engine:
    def __init__(self) -> None:
        self.events = EventBus()


async def _pending_after_flood(n: int) -> int:
    engine = _Engine()
    stream = system._event_stream(engine, {}, None, None)  # type: ignore[arg-type]
    assert await stream.__anext__() == b""  # subscribed, headers flushed
    for i in range(n):
        engine.events.publish("volume", "create", f"v{i}")
    await asyncio.sleep(0.1)  # the deliveries run on the loop
    got = 0
    try:
        while True:
            await asyncio.wait_for(stream.__anext__(), 0.2)
            got += 1
    except asyncio.TimeoutError:
        pass
    await stream.aclose()
    return got


def test_a_follower_that_does_not_read_keeps_a_bounded_backlog():
    got = asyncio.run(_pending_after_flood(5000))
    assert 0 < got <= system.EVENTS_PENDING
