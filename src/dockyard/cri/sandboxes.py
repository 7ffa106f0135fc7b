"""Pod sandboxes as engine containers: a pause container holding the pod's namespaces, as cri-dockerd.

The pause container is created through the engine's container service with a Docker-shaped body, with
``NetworkMode: none`` (or ``host``), and started; the pod network is then ADDed by CNI in its network
namespace, pinned under ``<exec-root>/cri/netns/<sandbox id>`` so that the DEL of a later stop finds
its interfaces even once the pause process is gone (and after a daemon restart). The engine cannot
start a container in a namespace given by path, so the namespace is the pause container's own, as
cri-dockerd and dockershim do it; app containers join it with ``NetworkMode: container:<sandbox>``.

A sandbox is READY while its pause container runs and its network is set up. Everything is read back
from the engine's records and the CNI cache; there is no database of the CRI's own.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors
from ..distribution.auth import AuthConfig
from ..network import podnet
from ..util import reference as refs
from . import naming, resources
from .backend import Backend, Container

log = logging.getLogger("dockyard.cri")

# as containerd: what is left running when the pod stops is killed (the kubelet stopped each
# container with its grace period before)
STOP_TIMEOUT = 0
# containerd's pause containers and their OOM score: the last to go
SANDBOX_OOM_SCORE_ADJ = -998


@dataclass
class Namespaces:
    """The pod's namespace modes, in the CRI's enum values (POD 0, CONTAINER 1, NODE 2)."""

    network: int = 0
    pid: int = 1
    ipc: int = 0



@dataclass
class Sandbox:
    container: Container
    meta: naming.Meta
    # the CNI network that made the pod's addresses, from the CNI cache (a container's labels are
    # fixed at create, before the ADD); "" on the host's network or once torn down
    network: str

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def namespace(self) -> str:
        return str(self.meta.extra.get("namespace", ""))

    @property
    def uid(self) -> str:
        return str(self.meta.extra.get("uid", ""))

    @property
    def namespaces(self) -> Namespaces:
        ns = self.meta.extra.get("ns") or {}
        return Namespaces(int(ns.get("network", 0)), int(ns.get("pid", 1)), int(ns.get("ipc", 0)))

    @property
    def ready(self) -> bool:
        return self.container.state.status == "running"


class Sandboxes:
    def __init__(self, engine: Backend) -> None:
        self.engine = engine
        config = engine.config
        self.pods = podnet.PodNetworks(os.path.join(config.exec_root, "cri", "netns"),
                                       os.path.join(config.data_root, "cni"), config.cni_conf_dir,
                                       config.cni_bin_dirs)
        self._lock = threading.Lock()
        self._pod_locks: dict[str, threading.Lock] = {}

    # -- lookup ---------------------------------------------------------------------------------
    def all(self) -> list[Sandbox]:
        out = []
        for c in self.engine.containers.all():
            labels = c.config.get("Labels") or {}
            if naming.kind_of(labels) == naming.SANDBOX:
                meta = naming.meta_of(labels)
                if meta is not None:
                    out.append(Sandbox(c, meta, self.pods.network_of(c.id)))
        return out

    def get(self, ref: str) -> Sandbox:
        """By ID or unique ID prefix; NOT_FOUND for anything else, a container of the pod too."""
        if ref:
            matches = [s for s in self.all() if s.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errors.InvalidParameter(f"pod sandbox ID prefix {ref!r} is ambiguous")
        raise errors.NotFound(f"pod sandbox {ref!r} not found")

    def _pod_lock(self, sandbox_id: str) -> threading.Lock:
        with self._lock:
            return self._pod_locks.setdefault(sandbox_id, threading.Lock())

    # -- run ------------------------------------------------------------------------------------
    def run(self, config: Any, handler: str) -> str:
        md = config.metadata
        naming.require(md.name, "metadata.name")
        naming.require(md.namespace, "metadata.namespace")
        naming.require(md.uid, "metadata.uid")
        if handler not in ("", "runc"):
            raise errors.NotFound(f"no runtime for {handler!r} is configured")
        linux = config.linux
        opts = linux.security_context.namespace_options
        ns = Namespaces(opts.network, opts.pid, opts.ipc)
        host_net = ns.network == resources.NODE
        image = self._sandbox_image()
        meta = naming.Meta(md.name, md.attempt, dict(config.labels), dict(config.annotations), {
            "namespace": md.namespace, "uid": md.uid, "log_directory": config.log_directory,
            "hostname": config.hostname, "handler": handler,
            "ns": {"network": ns.network, "pid": ns.pid, "ipc": ns.ipc}})
        sec = linux.security_context
        host_config: dict[str, Any] = {
            "NetworkMode": "host" if host_net else "none",
            "IpcMode": "host" if ns.ipc == resources.NODE else "shareable",
            "PidMode": "host" if ns.pid == resources.NODE else "",
            "UTSMode": "host" if host_net else "",
            # the pause container writes nothing; no json-file copier for it
            "LogConfig": {"Type": "none", "Config": {}},
            "OomScoreAdj": resources.clamp_oom_score_adj(SANDBOX_OOM_SCORE_ADJ),
            "Sysctls": dict(linux.sysctls),
            "CgroupParent": linux.cgroup_parent,
            "ReadonlyRootfs": sec.readonly_rootfs,
            "Privileged": sec.privileged,
            "SecurityOpt": resources.seccomp_opts(sec.seccomp, sec.seccomp_profile_path, "linux.security_context",
                                                  sec.HasField("seccomp")),
        }
        if sec.HasField("run_as_user"):
            user = str(sec.run_as_user.value)
            body_user = user + (f":{sec.run_as_group.value}" if sec.HasField("run_as_group") else "")
        else:
            body_user = ""
        body = {"Image": image, "Hostname": "" if host_net else config.hostname, "User": body_user,
                "Labels": naming.labels(naming.SANDBOX, meta), "HostConfig": host_config}
        name = naming.sandbox_name(md.name, md.namespace, md.uid, md.attempt)
        c = self.engine.containers.create(name, body)
        try:
            if not host_net:
                _write(c.resolv_conf_path, resolv_conf(config.dns_config))
            self.engine.containers.start(c.id)
            if not host_net:
                c = self.engine.containers.get(c.id)
                pod = podnet.Pod(c.id, md.namespace, md.name, md.uid,
                                 port_mappings(config.port_mappings))
                self.pods.setup(pod, join=f"/proc/{c.state.pid}/ns/net")
        except BaseException:
            # a failed sandbox leaves nothing: the CNI ADD undid its own work, the container goes
            self._discard(c.id)
            raise
        return c.id

    def _sandbox_image(self) -> str:
        image = self.engine.config.sandbox_image
        try:
            self.engine.images.resolve(image)
        except errors.NotFound:
            self.engine.distribution.pull(refs.parse(image), None, AuthConfig(), lambda _: None)
        return image

    def _discard(self, sandbox_id: str) -> None:
        try:
            self.engine.containers.remove(sandbox_id, force=True)
        except errors.NotFound:
            pass
        except errors.DockyardError as e:
            log.warning("removing the failed sandbox %s: %s", sandbox_id, e)
        self.pods.teardown(sandbox_id, self.pods.network_of(sandbox_id))

    # -- stop and remove --------------------------------------------------------------------------
    def stop(self, ref: str, stop_container: Callable[[str, int], None]) -> None:
        """Every container of the pod, the pod network, then the pause container; again is fine."""
        try:
            s = self.get(ref)
        except errors.NotFound:
            return  # the CRI: stopping what is gone succeeds
        with self._pod_lock(s.id):
            for c in self.members(s.id):
                stop_container(c.id, STOP_TIMEOUT)
            self.pods.teardown(s.id, s.network)
            try:
                self.engine.containers.stop(s.id, timeout=0)
            except (errors.NotFound, errors.NotModified):
                pass

    def remove(self, ref: str, remove_container: Callable[[str], None]) -> None:
        try:
            s = self.get(ref)
        except errors.NotFound:
            return
        with self._pod_lock(s.id):
            for c in self.members(s.id):
                remove_container(c.id)
            self.pods.teardown(s.id, s.network)
            try:
                self.engine.containers.remove(s.id, force=True)
            except errors.NotFound:
                pass
        with self._lock:
            self._pod_locks.pop(s.id, None)

    def forget(self, sandbox_id: str) -> None:
        """A sandbox container removed behind the CRI's back (``docker rm -f``): its network released
        and its containers removed, so that no pod is left half there."""
        with self._pod_lock(sandbox_id):
            self.pods.teardown(sandbox_id, self.pods.network_of(sandbox_id))
            for c in self.members(sandbox_id):
                try:
                    self.engine.containers.remove(c.id, force=True)
                except errors.NotFound:
                    pass
        with self._lock:
            self._pod_locks.pop(sandbox_id, None)

    def reconcile(self) -> None:
        """Release the networks of sandboxes that went while the CRI was not listening (removed with
        the CRI not yet loaded, or the daemon down)."""
        present = {c.id for c in self.engine.containers.all()}
        for sandbox_id in self.pods.pods() - present:
            try:
                self.forget(sandbox_id)
            except errors.DockyardError as e:
                log.warning("releasing the network of the removed sandbox %s: %s", sandbox_id, e)

    def members(self, sandbox_id: str) -> list[Container]:
        return [c for c in self.engine.containers.all()
                if (c.config.get("Labels") or {}).get(naming.SANDBOX_ID_LABEL) == sandbox_id
                and naming.kind_of(c.config.get("Labels") or {}) == naming.CONTAINER]

    def ips(self, s: Sandbox) -> list[str]:
        return self.pods.ips(s.id, s.network) if s.network and s.ready else []

    def netns_path(self, s: Sandbox) -> str:
        return self.pods.netns_path(s.id) if s.network else ""


def port_mappings(ports: Any) -> list[dict[str, Any]]:
    """CNI's portMappings; a port without a host port is only declared (containerd skips it too)."""
    return [port_mapping(p) for p in ports if p.host_port > 0]


def port_mapping(p: Any) -> dict[str, Any]:
    protocol = {0: "tcp", 1: "udp", 2: "sctp"}.get(p.protocol, "tcp")
    return {"hostPort": p.host_port, "containerPort": p.container_port, "protocol": protocol,
            "hostIP": p.host_ip}


def resolv_conf(dns: Any) -> str:
    """The pod's resolv.conf from its DNSConfig; the host's when the kubelet gives none (dnsPolicy Default
    arrives as the host's servers anyway)."""
    if not (dns.servers or dns.searches or dns.options):
        try:
            with open("/etc/resolv.conf", encoding="utf-8") as f:
                return f.read()
        except OSError:
            return ""
    lines = []
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    lines += [f"nameserver {s}" for s in dns.servers]
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
