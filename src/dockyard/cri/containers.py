"""A pod's app containers as engine containers, and their CRI status read back from the engine's records.

Created through the engine's container service with the body of ``resources.container_body``, named
and labelled as cri-dockerd (``naming``); ``docker ps``/``logs``/``exec``/``rm -f`` act on the same
containers and the CRI sees what they did, since it keeps nothing the engine does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cri_api.v1 import api_pb2 as cri

from .. import errors
from ..util.timefmt import parse_ns
from . import logs, naming, resources
from .backend import Backend, Container
from .sandboxes import Sandboxes

# The engine's states as the CRI's
_STATES = {"created": cri.CONTAINER_CREATED, "running": cri.CONTAINER_RUNNING, "paused": cri.CONTAINER_RUNNING,
           "restarting": cri.CONTAINER_RUNNING, "removing": cri.CONTAINER_EXITED, "exited": cri.CONTAINER_EXITED,
           "dead": cri.CONTAINER_EXITED}
_PROPAGATION = {"rslave": cri.PROPAGATION_HOST_TO_CONTAINER, "slave": cri.PROPAGATION_HOST_TO_CONTAINER,
                "rshared": cri.PROPAGATION_BIDIRECTIONAL, "shared": cri.PROPAGATION_BIDIRECTIONAL}


@dataclass
class PodContainer:
    container: Container
    meta: naming.Meta

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def sandbox_id(self) -> str:
        return (self.container.config.get("Labels") or {}).get(naming.SANDBOX_ID_LABEL, "")

    @property
    def log_path(self) -> str:
        return (self.container.config.get("Labels") or {}).get(naming.LOG_PATH_LABEL, "")

    @property
    def state(self) -> int:
        return _STATES.get(self.container.state.status, cri.CONTAINER_UNKNOWN)


def stamp_ns(value: str) -> int:
    return parse_ns(value.encode()) if value and not value.startswith("0001-") else 0


class PodContainers:
    def __init__(self, engine: Backend, sandboxes: Sandboxes) -> None:
        self.engine = engine
        self.sandboxes = sandboxes

    def all(self) -> list[PodContainer]:
        out = []
        for c in self.engine.containers.all():
            labels = c.config.get("Labels") or {}
            if naming.kind_of(labels) == naming.CONTAINER:
                meta = naming.meta_of(labels)
                if meta is not None:
                    out.append(PodContainer(c, meta))
        return out

    def get(self, ref: str) -> PodContainer:
        if ref:
            matches = [c for c in self.all() if c.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errors.InvalidParameter(f"container ID prefix {ref!r} is ambiguous")
        raise errors.NotFound(f"container {ref!r} not found")

    # -- lifecycle --------------------------------------------------------------------------------
    def create(self, sandbox_ref: str, config: Any, sandbox_config: Any) -> str:
        s = self.sandboxes.get(sandbox_ref)
        md = config.metadata
        naming.require(md.name, "metadata.name")
        image = naming.require(config.image.image, "image.image")
        if not s.ready:
            raise errors.Conflict(f"pod sandbox {s.id} is not ready")
        log_dir = sandbox_config.log_directory or str(s.meta.extra.get("log_directory", ""))
        log_path = os.path.join(log_dir, config.log_path) if log_dir and config.log_path else ""
        meta = naming.Meta(md.name, md.attempt, dict(config.labels), dict(config.annotations),
                           {"image": image})
        labels = naming.labels(naming.CONTAINER, meta, {naming.SANDBOX_ID_LABEL: s.id,
                                                         **({naming.LOG_PATH_LABEL: log_path} if log_path else {})})
        cgroup_parent = sandbox_config.linux.cgroup_parent or str(s.record.extra.get("cgroup_parent", ""))
        body = resources.container_body(config, s.record.pause, s.namespaces, s.hostname, labels, image,
                                        cgroup_parent, s.record.dns)
        name = naming.container_name(md.name, s.meta.name, s.namespace, s.uid, md.attempt)
        return self.engine.containers.create(name, body, namespaces=self.sandboxes.joins(s),
                                             log_mirror=log_path).id

    def start(self, ref: str) -> PodContainer:
        pc = self.get(ref)
        if pc.log_path:
            logs.make(pc.log_path)
        self.engine.containers.start(pc.id)
        return pc

    def stop(self, ref: str, timeout: int) -> None:
        """SIGTERM (or the image's stop signal), SIGKILL after ``timeout``; already stopped or gone is done."""
        try:
            pc = self.get(ref)
            self.engine.containers.stop(pc.id, timeout=timeout)
        except (errors.NotFound, errors.NotModified):
            pass

    def remove(self, ref: str) -> None:
        try:
            pc = self.get(ref)
            self.engine.containers.remove(pc.id, force=True)
        except errors.NotFound:
            pass

    # -- the CRI's view -----------------------------------------------------------------------------
    def to_cri(self, pc: PodContainer) -> cri.Container:
        c = pc.container
        return cri.Container(
            id=c.id, pod_sandbox_id=pc.sandbox_id,
            metadata=cri.ContainerMetadata(name=pc.meta.name, attempt=pc.meta.attempt),
            image=cri.ImageSpec(image=str(pc.meta.extra.get("image", c.image_name))), image_ref=c.image_id,
            image_id=c.image_id, state=pc.state, created_at=stamp_ns(c.created),
            labels=pc.meta.labels, annotations=pc.meta.annotations)

    def status(self, pc: PodContainer) -> cri.ContainerStatus:
        c = pc.container
        st = c.state
        reason = message = ""
        if pc.state == cri.CONTAINER_EXITED:
            if st.oom_killed:
                reason = "OOMKilled"
            elif st.exit_code == 0 and not st.error:
                reason = "Completed"
            else:
                reason = "Error"
            message = st.error
        elif pc.state == cri.CONTAINER_CREATED and st.error:
            reason, message = "StartError", st.error
        mounts = [cri.Mount(container_path=m.get("destination", ""), host_path=m.get("source", ""),
                            readonly=not m.get("rw", True), propagation=_PROPAGATION.get(m.get("propagation", ""),
                                                                                          cri.PROPAGATION_PRIVATE))
                  for m in c.mounts]
        hc = c.host_config
        res = cri.ContainerResources(linux=cri.LinuxContainerResources(
            cpu_period=hc.get("CpuPeriod") or 0, cpu_quota=hc.get("CpuQuota") or 0,
            cpu_shares=hc.get("CpuShares") or 0, memory_limit_in_bytes=hc.get("Memory") or 0,
            oom_score_adj=hc.get("OomScoreAdj") or 0, cpuset_cpus=hc.get("CpusetCpus") or "",
            cpuset_mems=hc.get("CpusetMems") or ""))
        return cri.ContainerStatus(
            id=c.id, metadata=cri.ContainerMetadata(name=pc.meta.name, attempt=pc.meta.attempt), state=pc.state,
            created_at=stamp_ns(c.created), started_at=stamp_ns(st.started_at),
            finished_at=stamp_ns(st.finished_at) if pc.state == cri.CONTAINER_EXITED else 0,
            exit_code=st.exit_code if pc.state == cri.CONTAINER_EXITED else 0,
            image=cri.ImageSpec(image=str(pc.meta.extra.get("image", c.image_name))), image_ref=c.image_id,
            image_id=c.image_id, reason=reason, message=message, labels=pc.meta.labels,
            annotations=pc.meta.annotations, mounts=mounts, log_path=pc.log_path, resources=res)

