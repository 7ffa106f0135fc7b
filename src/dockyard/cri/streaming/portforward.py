"""Port forwarding: the kubelet's portforward protocol over SPDY or a WebSocket.

Over SPDY (``portforward.k8s.io``) each forwarded connection is a pair of streams the client opens,
``streamType`` ``data`` and ``error``, with the pod's ``port`` and a ``requestID`` that pairs them
(older clients send none: the pair is then guessed from the stream ids, as the kubelet does). The
connection stays up for any number of pairs. Over a WebSocket the ports are fixed when it opens (the
request's, or the ``port`` query parameters) and port i has the channels 2i (data) and 2i+1 (error),
each of which first carries the port as two little-endian bytes. A failure is told as text on the
error stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Coroutine, Protocol

from ... import errors
from ...httpd.server import RawStream
from . import spdy, websocket
from .backend import Duplex, Runtime
from .remotecommand import STREAM_CREATION_TIMEOUT

log = logging.getLogger("dockyard.cri.streaming")

SPDY_PROTOCOLS = ["portforward.k8s.io"]
TUNNEL_PROTOCOL = websocket.SPDY_TUNNEL_PREFIX + SPDY_PROTOCOLS[0]
WEBSOCKET_PROTOCOLS = ["", websocket.V4_CHANNEL, websocket.V4_BASE64_CHANNEL, TUNNEL_PROTOCOL]
DATA, ERROR = "data", "error"


@dataclass
class PortForwardRequest:
    sandbox_id: str
    ports: list[int] = field(default_factory=list)


def parse_ports(values: list[str]) -> list[int]:
    """The ``port`` query parameters (each may be a comma-separated list)."""
    ports = []
    for value in values:
        for text in value.split(","):
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise errors.InvalidParameter(f"unable to parse {text!r} as a port")
            ports.append(int(text))
    return ports


async def forward(runtime: Runtime, sandbox_id: str, port: int, data: Duplex, error: Duplex) -> None:
    try:
        await runtime.port_forward(sandbox_id, port, data)
    except errors.DockyardError as e:
        await error.write(f"error forwarding port {port} to pod {sandbox_id}, uid : {e}".encode())
    finally:
        await data.close()
        await error.close()


@dataclass
class _Pair:
    request_id: str
    data: spdy.Stream | None = None
    error: spdy.Stream | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class Transport(Protocol):
    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


async def over_spdy(raw: Transport, request: PortForwardRequest, runtime: Runtime) -> None:
    """A SPDY connection on the upgraded HTTP connection, or tunnelled in a WebSocket's messages."""
    conn = spdy.Connection(raw.read, raw.write)
    pairs: dict[str, _Pair] = {}
    tasks: set[asyncio.Task[None]] = set()

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def watch(pair: _Pair) -> None:
        """A pair whose second stream does not come in time is told so and dropped."""
        try:
            await asyncio.wait_for(pair.complete.wait(), STREAM_CREATION_TIMEOUT)
        except asyncio.TimeoutError:
            if pair.error is not None:
                await pair.error.write(f"timed out waiting for streams of request {pair.request_id}".encode())
                await pair.error.close()
        finally:
            pairs.pop(pair.request_id, None)

    async def run_pair(pair: _Pair, port: int) -> None:
        assert pair.data is not None and pair.error is not None
        try:
            await forward(runtime, request.sandbox_id, port, pair.data, pair.error)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.forget(pair.data)
            conn.forget(pair.error)

    async def accept(stream: spdy.Stream) -> bool:
        port_text = stream.header("port")
        kind = stream.header("streamType")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536 or kind not in (DATA, ERROR):
            log.warning("portforward: stream %d refused: port %r, streamType %r", stream.id, port_text, kind)
            return False
        # clients before request IDs open the error stream, then the data stream right after it
        request_id = stream.header("requestID") or str(stream.id if kind == ERROR else stream.id - 2)
        pair = pairs.get(request_id)
        if pair is None:
            pair = pairs[request_id] = _Pair(request_id)
            spawn(watch(pair))
        if getattr(pair, kind) is not None:
            if pair.error is not None:
                await pair.error.write(f"error processing stream for request {request_id}: "
                                       f"{kind} stream already assigned".encode())
            return False
        setattr(pair, kind, stream)
        if pair.data is not None and pair.error is not None:
            pair.complete.set()
            spawn(run_pair(pair, int(port_text)))
        return True

    try:
        await conn.serve(accept)
    finally:
        for task in list(tasks):
            task.cancel()
        await conn.go_away()
        raw.close()


async def over_websocket(raw: RawStream, protocol: str, ports: list[int], request: PortForwardRequest,
                         runtime: Runtime) -> None:
    conn = websocket.ChannelConnection(raw, protocol, [(True, True), (False, True)] * len(ports))
    serving = asyncio.create_task(conn.serve())
    try:
        for i, port in enumerate(ports):
            for channel in conn.channels[2 * i:2 * i + 2]:
                await channel.write(port.to_bytes(2, "little"))
        work = asyncio.gather(*(forward(runtime, request.sandbox_id, port, conn.channels[2 * i],
                                        conn.channels[2 * i + 1]) for i, port in enumerate(ports)))
        await asyncio.wait({work, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
        try:
            await work
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
    except (ConnectionError, OSError):
        pass
    finally:
        await conn.close()
        serving.cancel()
