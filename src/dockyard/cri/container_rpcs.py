"""The RuntimeService's container RPCs: lifecycle, status and lists, ExecSync, stats, logs and events."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, AsyncIterator

import grpc
from cri_api.v1 import api_pb2 as cri

from .. import errors
from . import naming, resources
from . import stats as statsmod
from .backend import Backend
from .containers import PodContainer, PodContainers
from .execsync import exec_sync
from . import logs
from .pods import matches
from .sandboxes import Sandboxes
from .status import rpc

# engine container events → the CRI's
_EVENTS = {"create": cri.CONTAINER_CREATED_EVENT, "start": cri.CONTAINER_STARTED_EVENT,
           "die": cri.CONTAINER_STOPPED_EVENT, "destroy": cri.CONTAINER_DELETED_EVENT}


class ContainerRpcs:
    engine: Backend
    sandboxes: Sandboxes
    pod_containers: PodContainers

    @rpc
    async def CreateContainer(self, request: cri.CreateContainerRequest,
                              context: grpc.aio.ServicerContext) -> cri.CreateContainerResponse:
        if not request.HasField("config"):
            raise errors.InvalidParameter("config is required")
        container_id = await asyncio.to_thread(self.pod_containers.create, request.pod_sandbox_id, request.config,
                                               request.sandbox_config)
        return cri.CreateContainerResponse(container_id=container_id)

    @rpc
    async def StartContainer(self, request: cri.StartContainerRequest,
                             context: grpc.aio.ServicerContext) -> cri.StartContainerResponse:
        await asyncio.to_thread(self.pod_containers.start, request.container_id)
        return cri.StartContainerResponse()

    @rpc
    async def StopContainer(self, request: cri.StopContainerRequest,
                            context: grpc.aio.ServicerContext) -> cri.StopContainerResponse:
        await asyncio.to_thread(self.pod_containers.stop, request.container_id, max(0, request.timeout))
        return cri.StopContainerResponse()

    @rpc
    async def RemoveContainer(self, request: cri.RemoveContainerRequest,
                              context: grpc.aio.ServicerContext) -> cri.RemoveContainerResponse:
        await asyncio.to_thread(self.pod_containers.remove, request.container_id)
        return cri.RemoveContainerResponse()

    @rpc
    async def ContainerStatus(self, request: cri.ContainerStatusRequest,
                              context: grpc.aio.ServicerContext) -> cri.ContainerStatusResponse:
        pc = await asyncio.to_thread(self.pod_containers.get, request.container_id)
        if pc.state == cri.CONTAINER_EXITED and pc.log_path:
            await asyncio.to_thread(logs.settle, self.engine, pc.id)
        info = {}
        if request.verbose:
            c = pc.container
            info["info"] = json.dumps({"pid": c.state.pid, "sandboxID": pc.sandbox_id, "name": c.name.lstrip("/"),
                                       "config": c.config, "hostConfig": c.host_config})
        return cri.ContainerStatusResponse(status=self.pod_containers.status(pc), info=info)

    @rpc
    async def ListContainers(self, request: cri.ListContainersRequest,
                             context: grpc.aio.ServicerContext) -> cri.ListContainersResponse:
        f = request.filter
        out = []
        for pc in await asyncio.to_thread(self.pod_containers.all):
            if f.id and not pc.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not pc.sandbox_id.startswith(f.pod_sandbox_id):
                continue
            if f.HasField("state") and f.state.state != pc.state:
                continue
            if not matches(pc.meta.labels, dict(f.label_selector)):
                continue
            out.append(self.pod_containers.to_cri(pc))
        return cri.ListContainersResponse(containers=out)

    @rpc
    async def UpdateContainerResources(self, request: cri.UpdateContainerResourcesRequest,
                                       context: grpc.aio.ServicerContext) -> cri.UpdateContainerResourcesResponse:
        pc = await asyncio.to_thread(self.pod_containers.get, request.container_id)
        body = resources.cgroup_resources(request.linux)
        await asyncio.to_thread(self.engine.containers.update, pc.id, body)
        return cri.UpdateContainerResourcesResponse()

    @rpc
    async def ReopenContainerLog(self, request: cri.ReopenContainerLogRequest,
                                 context: grpc.aio.ServicerContext) -> cri.ReopenContainerLogResponse:
        pc = await asyncio.to_thread(self.pod_containers.get, request.container_id)
        if pc.state != cri.CONTAINER_RUNNING:
            raise errors.Conflict(f"container {pc.id} is not running")
        if pc.log_path:
            # the engine's copier opens the path for every batch it appends: the new file is all it takes
            await asyncio.to_thread(logs.make, pc.log_path)
        return cri.ReopenContainerLogResponse()

    @rpc
    async def ExecSync(self, request: cri.ExecSyncRequest,
                       context: grpc.aio.ServicerContext) -> cri.ExecSyncResponse:
        pc = await asyncio.to_thread(self.pod_containers.get, request.container_id)
        code, out, err = await asyncio.to_thread(exec_sync, self.engine, pc.id, list(request.cmd),
                                                 float(request.timeout))
        return cri.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    @rpc
    async def ContainerStats(self, request: cri.ContainerStatsRequest,
                             context: grpc.aio.ServicerContext) -> cri.ContainerStatsResponse:
        pc = await asyncio.to_thread(self.pod_containers.get, request.container_id)
        return cri.ContainerStatsResponse(stats=await asyncio.to_thread(self.container_stats, pc))

    @rpc
    async def ListContainerStats(self, request: cri.ListContainerStatsRequest,
                                 context: grpc.aio.ServicerContext) -> cri.ListContainerStatsResponse:
        f = request.filter
        out = []
        for pc in await asyncio.to_thread(self.pod_containers.all):
            if pc.state != cri.CONTAINER_RUNNING:
                continue
            if f.id and not pc.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not pc.sandbox_id.startswith(f.pod_sandbox_id):
                continue
            if not matches(pc.meta.labels, dict(f.label_selector)):
                continue
            out.append(await asyncio.to_thread(self.container_stats, pc))
        return cri.ListContainerStatsResponse(stats=out)

    def container_stats(self, pc: PodContainer, sample: dict[str, Any] | None = None) -> cri.ContainerStats:
        """``sample``: the container's stats sample when the caller took it already."""
        if sample is None:
            sample = self.engine.stats.sample(pc.id)
        rw, _ = self.engine.containers.sizes(pc.container)
        attrs = cri.ContainerAttributes(id=pc.id, metadata=cri.ContainerMetadata(name=pc.meta.name,
                                                                                  attempt=pc.meta.attempt),
                                        labels=pc.meta.labels, annotations=pc.meta.annotations)
        mountpoint = os.path.join(self.engine.config.data_root, self.engine.storage_driver_name())
        return statsmod.container_stats(attrs, sample, rw, mountpoint)

    async def GetContainerEvents(self, request: cri.GetEventsRequest,
                                 context: grpc.aio.ServicerContext) -> AsyncIterator[cri.ContainerEventResponse]:
        """The engine's container events of pod containers, as they happen, until the client leaves."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, str, int, dict[str, str]]] = asyncio.Queue()

        def deliver(event: object) -> None:  # on an engine thread
            if getattr(event, "type", "") != "container":
                return
            attrs = getattr(event, "attributes", {})
            if naming.kind_of(attrs) != naming.CONTAINER or getattr(event, "action", "") not in _EVENTS:
                return
            loop.call_soon_threadsafe(queue.put_nowait, (event.action, event.actor_id,  # type: ignore[attr-defined]
                                                         event.time_nano, attrs))  # type: ignore[attr-defined]

        self.engine.events.subscribe(deliver)
        try:
            while True:
                action, container_id, when, attrs = await queue.get()
                if action == "die" and attrs.get(naming.LOG_PATH_LABEL):
                    await asyncio.to_thread(logs.settle, self.engine, container_id)
                yield cri.ContainerEventResponse(container_id=container_id, container_event_type=_EVENTS[action],
                                                 created_at=when)
        finally:
            self.engine.events.unsubscribe(deliver)

