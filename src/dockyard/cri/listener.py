"""The CRI's unix socket, served by gRPC from its first connection on.

grpcio and the CRI's generated messages cost about 16 MiB of resident memory, a third of an idle
daemon (the idle-RSS figure in docs/status.md). A daemon that no kubelet talks to must not pay it, so
the socket is first a plain asyncio listener; the first connection loads gRPC, which binds a socket
beside it and is renamed over the path (rename is atomic: every later client reaches gRPC directly).
The connections the plain listener took before that are spliced through to gRPC byte for byte; the
plain listener, no longer reachable by name, keeps only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from ..httpd import unixsock
from .backend import Backend
from .streaming import StreamServer

log = logging.getLogger("dockyard.cri")

SPLICE_CHUNK = 1 << 16


class CriSocket:
    """Made before the engine (a path that cannot be served stops the daemon before it touches the
    machine, as for the Docker API's sockets), served once the engine exists."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.engine: Backend | None = None
        self.streams: StreamServer | None = None
        self._first: asyncio.AbstractServer | None = None
        self._grpc: Any = None  # grpc.aio.Server, once loaded
        self._loading = asyncio.Lock()
        self._splices: set[asyncio.Task[None]] = set()

    async def bind(self) -> None:
        """The socket, made but not yet served; the caller has checked that no live daemon holds it."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._first = await asyncio.start_unix_server(self._take_first, sock=unixsock.listening(self.path),
                                                      start_serving=False)
        # root only, as containerd's socket: the CRI runs anything as anyone
        os.chmod(self.path, 0o600)

    async def serve(self, engine: Backend, streams: StreamServer) -> None:
        assert self._first is not None
        self.engine = engine
        self.streams = streams
        await self._first.start_serving()
        log.info("CRI listen on unix://%s", self.path)

    async def _take_first(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._splices.add(task)
        try:
            async with self._loading:
                if self._grpc is None:
                    self._grpc = await self._serve_grpc()
            await _splice(reader, writer, self.path)
        except Exception:
            log.exception("CRI: serving an early connection")
        finally:
            self._splices.discard(task)
            writer.close()

    async def _serve_grpc(self) -> Any:
        from .server import make_server  # grpc is loaded here, on first use

        # connections are taken only once serve() has the engine
        assert self.engine is not None and self.streams is not None
        staging = self.path + ".grpc"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        server = make_server(self.engine, self.streams, staging)
        await server.start()
        os.chmod(staging, 0o600)
        os.rename(staging, self.path)
        log.info("CRI served by gRPC on unix://%s", self.path)
        return server

    async def close(self, grace: float) -> None:
        if self._first is not None:
            self._first.close()
        for task in list(self._splices):
            task.cancel()
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._first is not None:  # ours: a socket we never bound may be another daemon's
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> None:
    """Both directions between an early client and the gRPC socket, each half-closed when its side ends."""
    up_reader, up_writer = await asyncio.open_unix_connection(path)

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(SPLICE_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()

    try:
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
    except ConnectionError:
        pass  # either side went away: the other is closed below
    finally:
        up_writer.close()
