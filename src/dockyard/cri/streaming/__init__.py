"""The CRI's streaming server: where Exec, Attach and PortForward send the kubelet.

``StreamServer`` (server.py) listens on the daemon's stream address and turns a one-time URL into an
exec, attach or port-forward session, speaking the kubelet's protocols over SPDY/3.1 (spdy.py) or a
WebSocket (websocket.py); ``EngineRuntime`` (engine.py) runs the sessions on the engine. Nothing here
loads gRPC: the server runs from the daemon's start, the RPCs reach it once gRPC is loaded.
"""

from .engine import EngineRuntime
from .server import StreamServer

__all__ = ["EngineRuntime", "StreamServer"]
