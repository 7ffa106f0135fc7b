"""The RuntimeService's pod sandbox RPCs (the work is in ``sandboxes``; app containers in ``container_rpcs``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import grpc
from cri_api.v1 import api_pb2 as cri

from . import stats as statsmod
from .containers import PodContainer, PodContainers
from .backend import Backend
from .sandboxes import Sandbox, Sandboxes
from .status import rpc


def matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class PodRpcs:
    engine: Backend
    sandboxes: Sandboxes
    pod_containers: PodContainers
    # container_rpcs.ContainerRpcs's: (the container, its sample, None to take one)
    container_stats: Callable[[PodContainer, dict[str, Any] | None], cri.ContainerStats]

    @rpc
    async def RunPodSandbox(self, request: cri.RunPodSandboxRequest,
                            context: grpc.aio.ServicerContext) -> cri.RunPodSandboxResponse:
        sandbox_id = await asyncio.to_thread(self.sandboxes.run, request.config, request.runtime_handler)
        return cri.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    @rpc
    async def StopPodSandbox(self, request: cri.StopPodSandboxRequest,
                             context: grpc.aio.ServicerContext) -> cri.StopPodSandboxResponse:
        await asyncio.to_thread(self.sandboxes.stop, request.pod_sandbox_id, self.pod_containers.stop)
        return cri.StopPodSandboxResponse()

    @rpc
    async def RemovePodSandbox(self, request: cri.RemovePodSandboxRequest,
                               context: grpc.aio.ServicerContext) -> cri.RemovePodSandboxResponse:
        await asyncio.to_thread(self.sandboxes.remove, request.pod_sandbox_id, self.pod_containers.remove)
        return cri.RemovePodSandboxResponse()

    @rpc
    async def PodSandboxStatus(self, request: cri.PodSandboxStatusRequest,
                               context: grpc.aio.ServicerContext) -> cri.PodSandboxStatusResponse:
        s = await asyncio.to_thread(self.sandboxes.get, request.pod_sandbox_id)
        ips = await asyncio.to_thread(self.sandboxes.ips, s)
        ns = s.namespaces
        status = cri.PodSandboxStatus(
            id=s.id, metadata=_metadata(s), state=cri.SANDBOX_READY if s.ready else cri.SANDBOX_NOTREADY,
            created_at=s.record.created_ns, labels=s.meta.labels, annotations=s.meta.annotations,
            runtime_handler=str(s.meta.extra.get("handler", "")),
            network=cri.PodSandboxNetworkStatus(ip=ips[0] if ips else "",
                                                additional_ips=[cri.PodIP(ip=ip) for ip in ips[1:]]),
            linux=cri.LinuxPodSandboxStatus(namespaces=cri.Namespace(options=cri.NamespaceOption(
                network=ns.network, pid=ns.pid, ipc=ns.ipc))))
        info = {}
        if request.verbose:
            c = s.pause
            info["info"] = json.dumps({
                "pid": c.state.pid if c else 0, "pauseContainer": c.id if c else "",
                "netNamespacePath": self.sandboxes.netns_path(s), "namespaces": s.record.namespaces,
                "cniNetwork": s.network, "image": c.image_name if c else "", "config": s.meta.extra})
        return cri.PodSandboxStatusResponse(status=status, info=info)

    @rpc
    async def ListPodSandbox(self, request: cri.ListPodSandboxRequest,
                             context: grpc.aio.ServicerContext) -> cri.ListPodSandboxResponse:
        sandboxes = await asyncio.to_thread(self.sandboxes.all)
        f = request.filter
        out = []
        for s in sandboxes:
            state = cri.SANDBOX_READY if s.ready else cri.SANDBOX_NOTREADY
            if f.id and not s.id.startswith(f.id):
                continue
            if f.HasField("state") and f.state.state != state:
                continue
            if not matches(s.meta.labels, dict(f.label_selector)):
                continue
            out.append(cri.PodSandbox(id=s.id, metadata=_metadata(s), state=state,
                                      created_at=s.record.created_ns, labels=s.meta.labels,
                                      annotations=s.meta.annotations,
                                      runtime_handler=str(s.meta.extra.get("handler", ""))))
        return cri.ListPodSandboxResponse(items=out)

    @rpc
    async def PodSandboxStats(self, request: cri.PodSandboxStatsRequest,
                              context: grpc.aio.ServicerContext) -> cri.PodSandboxStatsResponse:
        s = await asyncio.to_thread(self.sandboxes.get, request.pod_sandbox_id)
        return cri.PodSandboxStatsResponse(stats=await asyncio.to_thread(self._pod_stats, s))

    @rpc
    async def ListPodSandboxStats(self, request: cri.ListPodSandboxStatsRequest,
                                  context: grpc.aio.ServicerContext) -> cri.ListPodSandboxStatsResponse:
        f = request.filter
        sandboxes = await asyncio.to_thread(self.sandboxes.all)
        wanted = [s for s in sandboxes if s.ready and (not f.id or s.id.startswith(f.id))
                  and matches(s.meta.labels, dict(f.label_selector))]
        return cri.ListPodSandboxStatsResponse(
            stats=[await asyncio.to_thread(self._pod_stats, s) for s in wanted])

    def _pod_stats(self, s: Sandbox) -> cri.PodSandboxStats:
        running = [pc for pc in self.pod_containers.all() if pc.sandbox_id == s.id and pc.container.state.running]
        samples = [self.engine.stats.sample(pc.id) for pc in running]
        members = [self.container_stats(pc, sample) for pc, sample in zip(running, samples)]
        if s.pause is not None and s.pause.state.running:
            own = self.engine.stats.sample(s.pause.id)
        else:  # the pod's network is any running container's: they all share the pod's namespace
            own = {"networks": samples[0].get("networks") or {}} if samples else {}
        attrs = cri.PodSandboxAttributes(id=s.id, metadata=_metadata(s), labels=s.meta.labels,
                                         annotations=s.meta.annotations)
        return statsmod.pod_stats(attrs, own, members)


def _metadata(s: Sandbox) -> cri.PodSandboxMetadata:
    return cri.PodSandboxMetadata(name=s.meta.name, uid=s.uid, namespace=s.namespace, attempt=s.meta.attempt)
