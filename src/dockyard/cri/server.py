"""The gRPC server of the CRI: the runtime.v1 RuntimeService and ImageService over one engine.

RPCs not implemented (checkpoints, metrics, UpdateRuntimeConfig, UpdatePodSandboxResources) answer
UNIMPLEMENTED naming the RPC, without the traceback the generated servicers' default leaves in the log
(``status.unimplemented_answered``).
"""

from __future__ import annotations

import grpc
from cri_api.v1 import api_pb2_grpc

from .backend import Backend
from .images import ImageService
from .runtime import RuntimeService
from .streaming import StreamServer


# containerd's limit: a kubelet's ListContainers answer on a busy node outgrows gRPC's 4 MiB default
MAX_MESSAGE = 16 << 20


def make_server(engine: Backend, streams: StreamServer, path: str) -> grpc.aio.Server:
    """The server, bound to the unix socket ``path``, not yet started (called on the event loop); ``streams``
    serves the URLs that Exec, Attach and PortForward answer."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE)])
    runtime = RuntimeService(engine, streams)
    runtime.resume()
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(ImageService(engine), server)
    server.add_insecure_port(f"unix://{path}")
    return server
