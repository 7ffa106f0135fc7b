"""Pod sandboxes: the pod's namespaces pinned without a process, and a pause container only where the pod
shares one PID namespace.

A sandbox is a record of the CRI's own (``sandboxstore``) and the namespaces it holds: its network
namespace (made and pinned under ``<exec-root>/cri/netns/<id>``, where CNI ADDs the pod network), its
IPC namespace with the pod's ``/dev/shm``, and its UTS namespace named with the pod's hostname, all made
by ``runtime/podns.py`` with the pod's sysctls written inside, and pinned under
``<exec-root>/cri/pods/<id>``. App containers are engine containers that join those pins by path.

Why no pause container for most pods: a pause process and its conmon cost a ``runc create`` and
``start`` at every RunPodSandbox and about 2 MiB of resident memory for the pod's life, to hold
namespaces that a bind mount holds as well (CRI-O's ``drop_infra_ctr`` does the same). A pod that shares
its PID namespace (``namespace_options.pid = POD``) still gets one: a PID namespace dies with its first
process, so that process must be one that lives as long as the pod, and it reaps the pod's orphans. It
is named ``k8s_POD_…`` as cri-dockerd names it, joins the pins like the others, and its
``docker rm -f`` takes the pod away (its PID namespace is gone).

A sandbox is READY from a RunPodSandbox that completed until its StopPodSandbox, while its pins are
there (a host reboot empties the exec root) and its pause container, if any, runs.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors
from ..distribution.auth import AuthConfig
from ..network import podnet
from ..runtime import podns
from ..util import reference as refs
from . import naming, resources
from .backend import Backend, Container
from .sandboxstore import NOTREADY, READY, SandboxRecord, SandboxStore
from .status import AlreadyExists

log = logging.getLogger("dockyard.cri")

# as containerd: what is left running when the pod stops is killed (the kubelet stopped each
# container with its grace period before)
STOP_TIMEOUT = 0
# containerd's pause containers and their OOM score: the last to go
SANDBOX_OOM_SCORE_ADJ = -998
# the pod's /dev/shm: Docker's and containerd's default size
SHM_SIZE = 64 * 1024 * 1024


@dataclass
class Namespaces:
    """The pod's namespace modes, in the CRI's enum values (POD 0, CONTAINER 1, NODE 2)."""

    network: int = 0
    pid: int = 1
    ipc: int = 0


@dataclass
class Sandbox:
    record: SandboxRecord
    # the pause container (pods sharing their PID namespace), None for the others or once it is gone
    pause: Container | None
    # the CNI network that made the pod's addresses, from the CNI cache; "" on the host's network or
    # once torn down
    network: str

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def meta(self) -> naming.Meta:
        r = self.record
        return naming.Meta(r.name, r.attempt, r.labels, r.annotations, r.extra)

    @property
    def namespace(self) -> str:
        return str(self.record.extra.get("namespace", ""))

    @property
    def uid(self) -> str:
        return str(self.record.extra.get("uid", ""))

    @property
    def hostname(self) -> str:
        return str(self.record.extra.get("hostname", ""))

    @property
    def namespaces(self) -> Namespaces:
        ns = self.record.extra.get("ns") or {}
        return Namespaces(int(ns.get("network", 0)), int(ns.get("pid", 1)), int(ns.get("ipc", 0)))

    @property
    def ready(self) -> bool:
        r = self.record
        if r.state != READY or not all(podns.held(path) for path in r.namespaces.values()):
            return False
        return not r.pause or (self.pause is not None and self.pause.state.status == "running")


class Sandboxes:
    def __init__(self, engine: Backend) -> None:
        self.engine = engine
        config = engine.config
        cri_root = os.path.join(config.exec_root, "cri")
        self.pods_dir = os.path.join(cri_root, "pods")
        self.pods = podnet.PodNetworks(os.path.join(cri_root, "netns"), os.path.join(config.data_root, "cni"),
                                       config.cni_conf_dir, config.cni_bin_dirs)
        self.store = SandboxStore(os.path.join(config.data_root, "cri", "sandboxes"), cri_root)
        self._lock = threading.Lock()
        self._pod_locks: dict[str, threading.Lock] = {}
        self._starting: dict[str, str] = {}  # sandbox ID -> name, of the sandboxes being run, not yet recorded

    # -- lookup ---------------------------------------------------------------------------------
    def all(self) -> list[Sandbox]:
        records = self.store.all()
        pauses = {r.pause for r in records if r.pause}
        containers = {c.id: c for c in self.engine.containers.all() if c.id in pauses} if pauses else {}
        return [Sandbox(r, containers.get(r.pause), self.pods.network_of(r.id)) for r in records]

    def get(self, ref: str) -> Sandbox:
        """By ID or unique ID prefix; NOT_FOUND for anything else, a container of the pod too."""
        if ref:
            matches = [r for r in self.store.all() if r.id.startswith(ref)]
            if len(matches) == 1:
                return self._sandbox(matches[0])
            if len(matches) > 1:
                raise errors.InvalidParameter(f"pod sandbox ID prefix {ref!r} is ambiguous")
        raise errors.NotFound(f"pod sandbox {ref!r} not found")

    def _sandbox(self, r: SandboxRecord) -> Sandbox:
        pause = None
        if r.pause:
            try:
                pause = self.engine.containers.get(r.pause)
            except errors.NotFound:
                pass
        return Sandbox(r, pause, self.pods.network_of(r.id))

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
        sysctls = dict(linux.sysctls)
        name = naming.sandbox_name(md.name, md.namespace, md.uid, md.attempt)
        record = SandboxRecord(
            id=secrets.token_hex(32), name=md.name, attempt=md.attempt, labels=dict(config.labels),
            annotations=dict(config.annotations), created_ns=time.time_ns(),
            extra={"namespace": md.namespace, "uid": md.uid, "log_directory": config.log_directory,
                   "hostname": config.hostname, "handler": handler, "cgroup_parent": linux.cgroup_parent,
                   "ns": {"network": ns.network, "pid": ns.pid, "ipc": ns.ipc}},
            dns={} if host_net else {"servers": list(config.dns_config.servers),
                                     "searches": list(config.dns_config.searches),
                                     "options": list(config.dns_config.options)})
        pins = self._pins(record.id, ns)
        podns.check_sysctls(sysctls, set(pins))
        with self._lock:  # the name is the kubelet's key for the pod: one sandbox per name at a time
            if name in self._starting.values() or any(
                    naming.sandbox_name(r.name, str(r.extra.get("namespace")), str(r.extra.get("uid")),
                                        r.attempt) == name for r in self.store.all()):
                raise AlreadyExists(f"pod sandbox name {name!r} is reserved by another sandbox")
            self._starting[record.id] = name
        try:
            with self._pod_lock(record.id):
                self._setup(record, config, ns, pins, sysctls)
        except BaseException:
            # a failed sandbox leaves nothing: the CNI ADD undid its own work, the rest goes here
            self._release(self._sandbox(record))
            if record.pause:
                self._remove_pause(record.pause)
            self._delete(record.id)
            raise
        finally:
            with self._lock:
                self._starting.pop(record.id, None)
        return record.id

    def _pins(self, sandbox_id: str, ns: Namespaces) -> dict[str, str]:
        """Where the pod's own namespaces are pinned, by runtime/podns.py's kind names."""
        pins: dict[str, str] = {}
        if ns.network != resources.NODE:
            pins["net"] = self.pods.netns_path(sandbox_id)
            pins["uts"] = os.path.join(self.pods_dir, sandbox_id, "uts")
        if ns.ipc != resources.NODE:
            pins["ipc"] = os.path.join(self.pods_dir, sandbox_id, "ipc")
        return pins

    def _setup(self, record: SandboxRecord, config: Any, ns: Namespaces, pins: dict[str, str],
               sysctls: dict[str, str]) -> None:
        """The pod made, then its record written once: a crash before leaves pins, a network and maybe a
        pause container that no record claims, which ``reconcile`` releases (the kubelet, which never
        got the ID, runs the pod again)."""
        record.namespaces = {_ENGINE_KIND[k]: path for k, path in pins.items()}
        if "ipc" in pins:
            record.namespaces["shm"] = os.path.join(self.pods_dir, record.id, "shm")
        if pins:  # none for a pod on the node's network and IPC
            podns.hold(pins, hostname=config.hostname, sysctls=sysctls)
        if "shm" in record.namespaces:
            podns.mount_shm(record.namespaces["shm"], SHM_SIZE)
        if "net" in pins:
            md = config.metadata
            pod = podnet.Pod(record.id, md.namespace, md.name, md.uid, port_mappings(config.port_mappings))
            self.pods.setup(pod, pinned=True)
        if ns.pid == resources.POD:
            record.pause = self._run_pause(record, config)
        record.state = READY
        self.store.save(record)

    def _run_pause(self, record: SandboxRecord, config: Any) -> str:
        """The pod's PID 1, in the pod's pinned namespaces."""
        linux = config.linux
        sec = linux.security_context
        ns = record.extra["ns"]
        host_config: dict[str, Any] = {
            "NetworkMode": "host" if ns["network"] == resources.NODE else "none",
            "IpcMode": "host" if ns["ipc"] == resources.NODE else "",
            "UTSMode": "host" if ns["network"] == resources.NODE else "",
            # the pause container writes nothing; no json-file copier for it
            "LogConfig": {"Type": "none", "Config": {}},
            "OomScoreAdj": resources.clamp_oom_score_adj(SANDBOX_OOM_SCORE_ADJ),
            "CgroupParent": linux.cgroup_parent,
            "ReadonlyRootfs": sec.readonly_rootfs,
            "Privileged": sec.privileged,
            "SecurityOpt": resources.seccomp_opts(sec.seccomp, sec.seccomp_profile_path, "linux.security_context",
                                                  sec.HasField("seccomp")),
        }
        user = ""
        if sec.HasField("run_as_user"):
            user = str(sec.run_as_user.value) + (f":{sec.run_as_group.value}" if sec.HasField("run_as_group") else "")
        meta = naming.Meta(record.name, record.attempt, record.labels, record.annotations,
                           {"namespace": record.extra["namespace"], "uid": record.extra["uid"]})
        body = {"Image": self._sandbox_image(), "User": user,
                "Hostname": "" if ns["network"] == resources.NODE else config.hostname,
                "Labels": naming.labels(naming.SANDBOX, meta, {naming.SANDBOX_ID_LABEL: record.id}),
                "HostConfig": host_config}
        name = naming.sandbox_name(record.name, str(record.extra["namespace"]), str(record.extra["uid"]),
                                   record.attempt)
        c = self.engine.containers.create(name, body, namespaces=record.namespaces)
        record.pause = c.id
        self.engine.containers.start(c.id)
        return c.id

    def _sandbox_image(self) -> str:
        image = self.engine.config.sandbox_image
        try:
            self.engine.images.resolve(image)
        except errors.NotFound:
            self.engine.distribution.pull(refs.parse(image), None, AuthConfig(), lambda _: None)
        return image

    # -- stop and remove --------------------------------------------------------------------------
    def stop(self, ref: str, stop_container: Callable[[str, int], None]) -> None:
        """Every container of the pod, its pause container, the pod network, then the pins; again is fine."""
        try:
            s = self.get(ref)
        except errors.NotFound:
            return  # the CRI: stopping what is gone succeeds
        with self._pod_lock(s.id):
            for c in self.members(s.id):
                stop_container(c.id, STOP_TIMEOUT)
            if s.record.pause:
                try:
                    self.engine.containers.stop(s.record.pause, timeout=0)
                except (errors.NotFound, errors.NotModified):
                    pass
            self._release(s)
            if s.record.state != NOTREADY:
                s.record.state = NOTREADY
                self.store.save(s.record)

    def remove(self, ref: str, remove_container: Callable[[str], None]) -> None:
        try:
            s = self.get(ref)
        except errors.NotFound:
            return
        with self._pod_lock(s.id):
            for c in self.members(s.id):
                remove_container(c.id)
            if s.record.pause:
                self._remove_pause(s.record.pause)
            self._release(s)
            self._delete(s.id)

    def _remove_pause(self, container_id: str) -> None:
        try:
            self.engine.containers.remove(container_id, force=True)
        except errors.NotFound:
            pass
        except errors.DockyardError as e:
            log.warning("removing the pause container %s: %s", container_id, e)

    def _release(self, s: Sandbox) -> None:
        """The pod network DELeted, then every pin and the pod's /dev/shm; what is gone is skipped."""
        self.pods.teardown(s.id, s.network or self.pods.network_of(s.id))
        for path in s.record.namespaces.values():
            podns.release(path)

    def _delete(self, sandbox_id: str) -> None:
        shutil.rmtree(os.path.join(self.pods_dir, sandbox_id), ignore_errors=True)
        self.store.delete(sandbox_id)
        with self._lock:
            self._pod_locks.pop(sandbox_id, None)

    def forget_pause(self, container_id: str) -> None:
        """A pause container removed behind the CRI's back (``docker rm -f``): its pod cannot run again
        (its PID namespace is gone), so the pod goes, network and containers with it, never half there."""
        record = next((r for r in self.store.all() if r.pause == container_id), None)
        if record is None:
            return
        with self._pod_lock(record.id):
            for c in self.members(record.id):
                try:
                    self.engine.containers.remove(c.id, force=True)
                except errors.NotFound:
                    pass
            self._release(self._sandbox(record))
            self._delete(record.id)

    def reconcile(self) -> None:
        """At the CRI's start: release what no record claims (a crash during a run or a removal), and
        take away the pods whose pause container went while the CRI was not listening."""
        records = {r.id: r for r in self.store.all()}
        for c in self.engine.containers.all():
            labels = c.config.get("Labels") or {}
            if naming.kind_of(labels) == naming.SANDBOX and self._unclaimed(labels.get(naming.SANDBOX_ID_LABEL, "")):
                self._remove_pause(c.id)
        strays = (self.pods.pods() | set(_listdir(self.pods_dir))) - set(records)
        for sandbox_id in strays:
            if not self._unclaimed(sandbox_id):
                continue
            try:
                self.pods.teardown(sandbox_id, self.pods.network_of(sandbox_id))
                for kind in ("ipc", "uts", "shm"):
                    podns.release(os.path.join(self.pods_dir, sandbox_id, kind))
                shutil.rmtree(os.path.join(self.pods_dir, sandbox_id), ignore_errors=True)
            except errors.DockyardError as e:
                log.warning("releasing the namespaces of the removed sandbox %s: %s", sandbox_id, e)
        present = {c.id for c in self.engine.containers.all()}
        for r in records.values():
            if r.pause and r.pause not in present and r.state == READY:
                try:
                    self.forget_pause(r.pause)
                except errors.DockyardError as e:
                    log.warning("releasing the pod of the removed sandbox %s: %s", r.id, e)

    def _unclaimed(self, sandbox_id: str) -> bool:
        """No record and no RunPodSandbox in flight claims ``sandbox_id`` (a run marks its ID before it
        makes anything and records it before it unmarks it, so asking now, after the listing, is safe)."""
        with self._lock:
            if sandbox_id in self._starting:
                return False
        return self.store.get(sandbox_id) is None

    def members(self, sandbox_id: str) -> list[Container]:
        return [c for c in self.engine.containers.all()
                if (c.config.get("Labels") or {}).get(naming.SANDBOX_ID_LABEL) == sandbox_id
                and naming.kind_of(c.config.get("Labels") or {}) == naming.CONTAINER]

    def ips(self, s: Sandbox) -> list[str]:
        return self.pods.ips(s.id, s.network) if s.network and s.ready else []

    def netns_path(self, s: Sandbox) -> str:
        return s.record.namespaces.get("network", "")

    def sandbox_netns(self, sandbox_id: str) -> str:
        """For the streaming server's port-forward: the pod's network namespace, "" on the host's."""
        s = self.get(sandbox_id)
        if not s.ready:
            raise errors.Conflict(f"pod sandbox {s.id} is not ready")
        return self.netns_path(s)

    def joins(self, s: Sandbox) -> dict[str, str]:
        """The pins an app container of ``s`` joins (``engine.containers.create``'s ``namespaces``)."""
        return dict(s.record.namespaces)


# runtime/podns.py's kind names -> the engine container's Container.namespaces keys
_ENGINE_KIND = {"net": "network", "ipc": "ipc", "uts": "uts"}


def port_mappings(ports: Any) -> list[dict[str, Any]]:
    """CNI's portMappings; a port without a host port is only declared (containerd skips it too)."""
    return [port_mapping(p) for p in ports if p.host_port > 0]


def port_mapping(p: Any) -> dict[str, Any]:
    protocol = {0: "tcp", 1: "udp", 2: "sctp"}.get(p.protocol, "tcp")
    return {"hostPort": p.host_port, "containerPort": p.container_port, "protocol": protocol,
            "hostIP": p.host_ip}


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
