"""The CRI's RuntimeService: the runtime's identity and readiness, the streaming URLs (pods and containers come
next)."""

from __future__ import annotations

import asyncio
import json

import grpc
from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from .. import __version__
from ..network import cni
from .backend import Backend
from .status import rpc
from .streaming import StreamServer


RUNTIME_NAME = "dockyard"
# the kubelet sends "0.1.0" and only checks that the answer's runtime_api_version is v1
KUBE_API_VERSION = "0.1.0"
RUNTIME_API_VERSION = "v1"
# containerd's words, which `kubectl describe node` shows until a network plugin is installed
NETWORK_NOT_READY = "NetworkPluginNotReady"
NETWORK_NOT_READY_MESSAGE = "Network plugin returns error: cni plugin not initialized"


class RuntimeService(api_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, engine: Backend, streams: StreamServer) -> None:
        self.engine = engine
        self.streams = streams

    @rpc
    async def Version(self, request: cri.VersionRequest, context: grpc.aio.ServicerContext) -> cri.VersionResponse:
        return cri.VersionResponse(version=KUBE_API_VERSION, runtime_name=RUNTIME_NAME,
                                   runtime_version=__version__, runtime_api_version=RUNTIME_API_VERSION)

    @rpc
    async def Status(self, request: cri.StatusRequest, context: grpc.aio.ServicerContext) -> cri.StatusResponse:
        config = self.engine.config
        # read on every call, as containerd watches the directory: a network plugin's DaemonSet writes
        # its conflist after the node joined, and the node turns Ready then
        try:
            net = await asyncio.to_thread(cni.load_dir, config.cni_conf_dir)
            network = cri.RuntimeCondition(type="NetworkReady", status=True)
        except cni.NoNetworkConfig:
            net = None
            network = cri.RuntimeCondition(type="NetworkReady", status=False, reason=NETWORK_NOT_READY,
                                           message=NETWORK_NOT_READY_MESSAGE)
        conditions = [cri.RuntimeCondition(type="RuntimeReady", status=True), network]
        info: dict[str, str] = {}
        if request.verbose:
            info["config"] = json.dumps({
                "cniConfDir": config.cni_conf_dir, "cniBinDirs": config.cni_bin_dirs,
                "cgroupDriver": config.cgroup_driver, "rootDir": config.data_root, "stateDir": config.exec_root})
            if net is not None:
                info["cniconfig"] = json.dumps({"path": net.path, "name": net.name, "cniVersion": net.cni_version,
                                                "plugins": [p["type"] for p in net.plugins]})
        return cri.StatusResponse(status=cri.RuntimeStatus(conditions=conditions), info=info,
                                  runtime_handlers=[cri.RuntimeHandler(name="")])

    @rpc
    async def RuntimeConfig(self, request: cri.RuntimeConfigRequest,
                            context: grpc.aio.ServicerContext) -> cri.RuntimeConfigResponse:
        driver = cri.SYSTEMD if self.engine.config.cgroup_driver == "systemd" else cri.CGROUPFS
        return cri.RuntimeConfigResponse(linux=cri.LinuxRuntimeConfiguration(cgroup_driver=driver))

    # -- streaming: each answers a one-time URL of the streaming server (cri/streaming/) --------------
    @rpc
    async def Exec(self, request: cri.ExecRequest, context: grpc.aio.ServicerContext) -> cri.ExecResponse:
        return cri.ExecResponse(url=await asyncio.to_thread(self.streams.get_exec_url, request))

    @rpc
    async def Attach(self, request: cri.AttachRequest, context: grpc.aio.ServicerContext) -> cri.AttachResponse:
        return cri.AttachResponse(url=await asyncio.to_thread(self.streams.get_attach_url, request))

    @rpc
    async def PortForward(self, request: cri.PortForwardRequest,
                          context: grpc.aio.ServicerContext) -> cri.PortForwardResponse:
        return cri.PortForwardResponse(url=await asyncio.to_thread(self.streams.get_portforward_url, request))
