"""A Kubernetes pod's network: a network namespace of its own, ``lo`` and the pod network made by CNI.

What a CRI runtime does for a sandbox that is not on the host's network: pin a new network namespace,
bring up ``lo`` (containerd's loopback list), ADD the first valid configuration of the CNI directory
with the pod's identity and port mappings, and report the addresses; teardown is the reverse and may
run any number of times (a kubelet retries StopPodSandbox, a daemon restart repeats what it was doing).
Teardown DELs with what the ADD ran with, from the CNI cache, so a conflist that changed in between
does not leave the old network's addresses behind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from . import cni, netns

log = logging.getLogger("dockyard.network.podnet")

POD_IFNAME = "eth0"


@dataclass
class Pod:
    """The pod as CNI sees it (CNI_ARGS) and the host ports it wants."""

    sandbox_id: str
    namespace: str
    name: str
    uid: str
    # CNI's portMappings entries: {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}
    port_mappings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PodNetwork:
    """What a sandbox keeps of its network: where the namespace is, which network made it, its IPs."""

    netns: str
    network: str
    ips: list[str]


class PodNetworks:
    def __init__(self, netns_dir: str, cache_dir: str, conf_dir: str, bin_dirs: list[str]) -> None:
        self.netns_dir = netns_dir
        self.conf_dir = conf_dir
        self.cni = cni.Cni(bin_dirs, cache_dir)

    def netns_path(self, sandbox_id: str) -> str:
        return os.path.join(self.netns_dir, sandbox_id)

    def setup(self, pod: Pod, pinned: bool = False) -> PodNetwork:
        """The pod's namespace with ``lo`` up and the pod network added; on a failure nothing is left
        (namespace, veth, address lease, port mappings).

        ``pinned``: the caller made the namespace at ``netns_path`` already (runtime/podns.py, with the
        pod's other namespaces and its sysctls in one go); otherwise a new one is made here.
        """
        try:
            net = cni.load_dir(self.conf_dir)
        except cni.NoNetworkConfig as e:
            raise errors.Unavailable(f"failed to set up the network of pod {pod.namespace}/{pod.name}: "
                                     f"cni plugin not initialized: {e}") from None
        path = self.netns_path(pod.sandbox_id)
        if not pinned:
            netns.create(path)
        args = cni.pod_args(pod.namespace, pod.name, pod.sandbox_id, pod.uid)
        loopback = cni.loopback_list()
        try:
            self.cni.add(loopback, cni.RuntimeConf(pod.sandbox_id, path, "lo", args))
            try:
                result = self.cni.add(net, cni.RuntimeConf(
                    pod.sandbox_id, path, POD_IFNAME, args, {"portMappings": pod.port_mappings}))
            except cni.CniError:
                self.cni.delete_cached(loopback.name, pod.sandbox_id, "lo")
                raise
        except cni.CniError as e:
            netns.remove(path)
            raise cni.CniError(f"failed to set up the network of pod {pod.namespace}/{pod.name}: {e}") from None
        return PodNetwork(path, net.name, [str(ip.ip) for ip in result.ips])

    def pods(self) -> set[str]:
        """The sandbox IDs with a pinned namespace or a cached pod network: those teardown would act on."""
        ids = {name for name in _listdir(self.netns_dir)}
        suffix = f"-{POD_IFNAME}"
        ids |= {name[:-len(suffix)].rsplit("-", 1)[1] for name in _listdir(os.path.join(self.cni.cache_dir, "results"))
                if name.endswith(suffix) and "-" in name[:-len(suffix)]}
        return ids

    def network_of(self, sandbox_id: str) -> str:
        """The network whose ADD result for the pod is cached (the one teardown must DEL); "" if none."""
        suffix = f"-{sandbox_id}-{POD_IFNAME}"
        try:
            names = os.listdir(os.path.join(self.cni.cache_dir, "results"))
        except FileNotFoundError:
            return ""
        return next((n[:-len(suffix)] for n in names if n.endswith(suffix)), "")

    def ips(self, sandbox_id: str, network: str) -> list[str]:
        """The pod's addresses from the CNI cache (what its ADD answered), as after a restart."""
        result = self.cni.cached_entry(network, sandbox_id, POD_IFNAME)
        return [str(ip.ip) for ip in result.ips] if result is not None else []

    def teardown(self, sandbox_id: str, network: str) -> None:
        """DEL of the pod network and ``lo``, then the namespace; what is already gone is skipped.

        A pin that is no longer a namespace (the host rebooted, or the daemon runs in another mount
        namespace than the one that pinned it) is DELeted without one."""
        gone = not netns.exists(self.netns_path(sandbox_id))
        if network:
            self.cni.delete_cached(network, sandbox_id, POD_IFNAME, netns_gone=gone)
        self.cni.delete_cached(cni.loopback_list().name, sandbox_id, "lo", netns_gone=gone)
        netns.remove(self.netns_path(sandbox_id))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
