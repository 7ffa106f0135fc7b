"""The streaming server: the HTTP listener behind the URLs that Exec, Attach and PortForward answer.

The RPC stores the request and answers ``http://ADDR/{exec,attach,portforward}/TOKEN``; the kubelet
connects there and upgrades to SPDY/3.1 or a WebSocket (remotecommand.py, portforward.py). HTTP is
httpd/server.py's h11 server, the one that serves the Docker API's hijacked streams.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any, Awaitable, Callable

from ... import errors
from ...httpd.server import HijackResponse, HTTPServer, RawStream, Request, Response
from ...httpd.websocket import accept_head
from ...util.timefmt import go_duration_ns
from . import portforward, remotecommand, websocket
from .backend import Runtime
from .portforward import PortForwardRequest
from .remotecommand import AttachRequest, ExecRequest
from .tokens import RequestCache

log = logging.getLogger("dockyard.cri.streaming")

DEFAULT_ADDRESS = "127.0.0.1:0"
# a stream with no traffic either way for this long is closed (containerd's stream_idle_timeout and the
# kubelet's streaming idle timeout)
DEFAULT_IDLE_TIMEOUT = "4h0m0s"
SPDY_UPGRADE = "SPDY/3.1"
KINDS = ("exec", "attach", "portforward")


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6) as containerd's stream_server_address and _port."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ValueError
        ipaddress.ip_address(host)
    except ValueError:
        raise errors.InvalidParameter(f"invalid stream address {address!r}: expected IP:PORT") from None
    return host, int(port)


def parse_idle_timeout(text: str) -> float | None:
    """A Go duration as containerd's stream_idle_timeout (``4h``, ``30s``), in seconds; None for 0 (no
    timeout)."""
    ns = go_duration_ns(text)
    if ns is None or ns < 0:
        raise errors.InvalidParameter(f"invalid stream idle timeout {text!r}: expected a duration such as "
                                      f"4h0m0s or 30s (0: none)")
    return ns / 1e9 or None


def _text(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, (message + "\n").encode(), "text/plain; charset=utf-8", headers or [])


class StreamServer:
    """Bound before the engine exists (a taken port stops the daemon first), served once it does.

    A session's connection with no traffic either way for ``idle_timeout`` (a Go duration; "0": none)
    is dropped, whatever runs behind it (httpd's ``HijackResponse.idle_timeout``)."""

    def __init__(self, address: str = DEFAULT_ADDRESS, cache: RequestCache[Any] | None = None,
                 idle_timeout: str = DEFAULT_IDLE_TIMEOUT) -> None:
        self.host, self.port = parse_address(address)
        self.idle_timeout = parse_idle_timeout(idle_timeout)
        self.cache: RequestCache[Any] = cache or RequestCache()
        self.runtime: Runtime | None = None
        self._http = HTTPServer(self._app, lambda: [])
        self._server: asyncio.AbstractServer | None = None

    async def bind(self) -> None:
        try:
            self._server = await asyncio.start_server(self._http.handle, self.host, self.port, start_serving=False)
        except OSError as e:
            raise errors.Unavailable(f"failed to listen on {self.host}:{self.port} for streaming: "
                                     f"{e.strerror or e}") from None
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve(self, runtime: Runtime) -> None:
        assert self._server is not None
        self.runtime = runtime
        await self._server.start_serving()
        log.info("CRI streaming server listen on %s", self.base_url)

    async def close(self, grace: float) -> None:
        if self._server is not None:
            self._server.close()
        await self._http.close_connections(grace)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- for the RPCs -----------------------------------------------------------------------------
    # Each checks the request as the kubelet's streaming server does (InvalidParameter naming the
    # field), then that its container or pod is there (NotFound, Conflict), on the engine: blocking,
    # an RPC calls it in a thread.
    def get_exec_url(self, req: Any) -> str:
        """The URL for a CRI ExecRequest (container_id, cmd, tty, stdin, stdout, stderr)."""
        _check_streams(req)
        if not list(req.cmd):
            raise errors.InvalidParameter("cmd: missing the command to run")
        self._runtime().check_container(req.container_id)
        return self._url("exec", ExecRequest(req.container_id, list(req.cmd), req.tty, req.stdin, req.stdout,
                                             req.stderr))

    def get_attach_url(self, req: Any) -> str:
        """The URL for a CRI AttachRequest (container_id, tty, stdin, stdout, stderr)."""
        _check_streams(req)
        self._runtime().check_container(req.container_id)
        return self._url("attach", AttachRequest(req.container_id, req.tty, req.stdin, req.stdout, req.stderr))

    def get_portforward_url(self, req: Any) -> str:
        """The URL for a CRI PortForwardRequest (pod_sandbox_id, port)."""
        if not req.pod_sandbox_id:
            raise errors.InvalidParameter("pod_sandbox_id: missing required pod_sandbox_id")
        ports = list(req.port)
        if any(not 0 < p < 65536 for p in ports):
            raise errors.InvalidParameter(f"port: invalid port in {ports}")
        self._runtime().check_sandbox(req.pod_sandbox_id)
        return self._url("portforward", PortForwardRequest(req.pod_sandbox_id, ports))

    def _runtime(self) -> Runtime:
        if self.runtime is None:
            raise errors.Unavailable("the streaming server is not serving yet")
        return self.runtime

    def _url(self, kind: str, request: Any) -> str:
        return f"{self.base_url}/{kind}/{self.cache.insert(request)}"

    # -- HTTP ---------------------------------------------------------------------------------------
    async def _app(self, request: Request) -> Response | HijackResponse:
        kind, _, token = request.path.strip("/").partition("/")
        if request.method not in ("GET", "POST") or kind not in KINDS or not token or "/" in token:
            return _text(404, "404 page not found")
        pending = self.cache.consume(token)
        wanted = {"exec": ExecRequest, "attach": AttachRequest, "portforward": PortForwardRequest}[kind]
        if not isinstance(pending, wanted) or self.runtime is None:
            return _text(404, "404 page not found")
        if isinstance(pending, PortForwardRequest):
            return self._portforward(request, pending, self.runtime)
        return self._remotecommand(request, pending, self.runtime)

    def _upgrade(self, handler: Callable[[RawStream], Awaitable[None]], head: bytes) -> HijackResponse:
        return HijackResponse(handler, head=head, idle_timeout=self.idle_timeout)

    def _remotecommand(self, request: Request, pending: ExecRequest | AttachRequest,
                       runtime: Runtime) -> Response | HijackResponse:
        if websocket.is_websocket(request.headers):
            protocol = _ws_protocol(request, remotecommand.WEBSOCKET_PROTOCOLS)
            if isinstance(protocol, Response):
                return protocol

            async def ws_session(raw: RawStream) -> None:
                await remotecommand.over_websocket(raw, protocol, pending, runtime)

            return self._upgrade(ws_session, head=_ws_head(request, protocol))
        negotiated = _spdy_protocol(request, remotecommand.SPDY_PROTOCOLS)
        if isinstance(negotiated, Response):
            return negotiated

        async def spdy_session(raw: RawStream) -> None:
            await remotecommand.over_spdy(raw, negotiated or remotecommand.V1, pending, runtime)

        return self._upgrade(spdy_session, head=_spdy_head(negotiated))

    def _portforward(self, request: Request, pending: PortForwardRequest,
                     runtime: Runtime) -> Response | HijackResponse:
        if websocket.is_websocket(request.headers):
            protocol = _ws_protocol(request, portforward.WEBSOCKET_PROTOCOLS)
            if isinstance(protocol, Response):
                return protocol
            if protocol == portforward.TUNNEL_PROTOCOL:
                async def tunnel_session(raw: RawStream) -> None:
                    await portforward.over_spdy(websocket.tunnel(raw), pending, runtime)

                return self._upgrade(tunnel_session, head=_ws_head(request, protocol))
            try:
                ports = portforward.parse_ports(request.qlist("port")) or pending.ports
            except errors.InvalidParameter as e:
                return _text(400, str(e))
            if not ports:
                return _text(400, 'query parameter "port" is required')

            async def ws_session(raw: RawStream) -> None:
                await portforward.over_websocket(raw, protocol, ports, pending, runtime)

            return self._upgrade(ws_session, head=_ws_head(request, protocol))
        negotiated = _spdy_protocol(request, portforward.SPDY_PROTOCOLS)
        if isinstance(negotiated, Response):
            return negotiated

        async def spdy_session(raw: RawStream) -> None:
            await portforward.over_spdy(raw, pending, runtime)

        return self._upgrade(spdy_session, head=_spdy_head(negotiated))


def _check_streams(req: Any) -> None:
    """The kubelet's checks of an Exec or Attach request."""
    if not req.container_id:
        raise errors.InvalidParameter("container_id: missing required container_id")
    if req.tty and req.stderr:
        # a terminal has one output: stderr cannot be told apart
        raise errors.InvalidParameter("tty and stderr cannot both be true")
    if not (req.stdin or req.stdout or req.stderr):
        raise errors.InvalidParameter("one of stdin, stdout, or stderr must be set")


def _spdy_protocol(request: Request, supported: list[str]) -> str | Response:
    """The protocol version both sides speak ("" if the client named none), or the refusal."""
    if request.headers.get("upgrade", "").lower() != SPDY_UPGRADE.lower() or not request.wants_upgrade:
        return _text(400, "unable to upgrade: missing upgrade headers in request")
    offered = [p.strip() for p in request.headers.get("x-stream-protocol-version", "").split(",") if p.strip()]
    if not offered:
        return ""
    chosen = next((p for p in offered if p in supported), None)
    if chosen is None:
        return _text(403, f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
                          f"server supports {supported}",
                     [("X-Accepted-Stream-Protocol-Versions", p) for p in supported])
    return chosen


def _spdy_head(protocol: str) -> bytes:
    head = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
    if protocol:
        head += b"X-Stream-Protocol-Version: " + protocol.encode() + b"\r\n"
    return head + b"\r\n"


def _ws_head(request: Request, protocol: str) -> bytes:
    return accept_head(request.headers.get("sec-websocket-key", ""), protocol)


def _ws_protocol(request: Request, supported: list[str]) -> str | Response:
    """The WebSocket subprotocol both sides speak, or the kubelet's refusal (which lists what is
    supported without the bare first entry, the protocol-less default)."""
    protocol = websocket.negotiate(request.headers, supported)
    if protocol is None:
        offered = request.headers.get("sec-websocket-protocol", "")
        return _text(400, f"unable to upgrade websocket connection: requested protocol(s) are not supported: "
                          f"{offered}; supports {supported[1:]}")
    return protocol
