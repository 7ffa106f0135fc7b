"""The client's side of a stream, and how output is framed for it."""

from __future__ import annotations

from typing import Callable, Protocol

STDOUT, STDERR = 1, 2  # the Engine API's stream ids (stdcopy)


class Duplex(Protocol):
    """A client connection as bytes: a hijacked HTTP socket, a WebSocket, a CRI stream."""

    async def read(self) -> bytes:
        """The client's next input; b"" once it closed its side."""
        ...

    async def write(self, data: bytes) -> None:
        ...

    def close(self) -> None:
        ...


Encoder = Callable[[int, bytes], bytes]  # (stream id, payload) -> what goes on the wire


def frame(stream: int, payload: bytes) -> bytes:
    """The Engine API's multiplexed frame: stream, three zero bytes, big-endian length."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def raw(_stream: int, payload: bytes) -> bytes:
    return payload


def encoder(multiplexed: bool) -> Encoder:
    return frame if multiplexed else raw
