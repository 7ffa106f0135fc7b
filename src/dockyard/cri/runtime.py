"""The CRI's RuntimeService: the runtime's identity and readiness, the pod and container RPCs of ``pods``
and ``container_rpcs`` over the same engine as the Docker API, and the streaming URLs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import grpc
from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from .. import __version__, errors
from ..network import cni
from . import naming
from .backend import Backend
from .container_rpcs import ContainerRpcs
from .containers import PodContainers
from .pods import PodRpcs
from .sandboxes import Sandboxes
from .status import rpc, unimplemented_answered
from .streaming import StreamServer

log = logging.getLogger("dockyard.cri")


RUNTIME_NAME = "dockyard"
# the kubelet sends "0.1.0" and only checks that the answer's runtime_api_version is v1
KUBE_API_VERSION = "0.1.0"
RUNTIME_API_VERSION = "v1"
# containerd's words, which `kubectl describe node` shows until a network plugin is installed
NETWORK_NOT_READY = "NetworkPluginNotReady"
NETWORK_NOT_READY_MESSAGE = "Network plugin returns error: cni plugin not initialized"


@unimplemented_answered(api_pb2_grpc.RuntimeServiceServicer)
class RuntimeService(PodRpcs, ContainerRpcs, api_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, engine: Backend, streams: StreamServer) -> None:
        self.engine = engine
        self.streams = streams
        self.sandboxes = Sandboxes(engine)
        if streams.runtime is not None:
            streams.runtime.sandboxes = self.sandboxes  # port-forward reaches the pods of these records
        self.pod_containers = PodContainers(engine, self.sandboxes)

    def resume(self) -> None:
        """When the CRI starts (with its first client): release what sandboxes removed meanwhile held,
        and from now on see a pause container removed through the Docker API."""
        self.engine.events.subscribe(self._engine_event)
        threading.Thread(target=self._reconcile, name="cri-reconcile", daemon=True).start()

    def _reconcile(self) -> None:
        try:
            self.sandboxes.reconcile()
        except Exception as e:  # a start-up chore: the CRI serves without it
            log.warning("releasing the networks of removed sandboxes: %s", e)

    def _engine_event(self, event: Any) -> None:
        """On the engine's thread: a pause container destroyed (``docker rm -f``) takes its pod."""
        if event.type == "container" and event.action == "destroy" and \
                naming.kind_of(event.attributes) == naming.SANDBOX:
            threading.Thread(target=self._forget, args=(event.actor_id,), name="cri-forget", daemon=True).start()

    def _forget(self, container_id: str) -> None:
        try:
            self.sandboxes.forget_pause(container_id)
        except errors.DockyardError as e:
            log.warning("releasing the pod of the removed pause container %s: %s", container_id, e)

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
