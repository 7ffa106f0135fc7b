"""docker update: new resource limits written to a running container's cgroup (``runc update``), no restart."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..runtime import spec as specmod
from .create import validate_restart_policy
from .state import PAUSED, RUNNING

RESOURCE_KEYS = ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "CpuQuota", "CpuPeriod", "NanoCpus",
                 "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "KernelMemory")
MIN_MEMORY = 6 * 1024 * 1024


def update(containers: Any, publish: Any, ref: str, body: dict[str, Any]) -> list[str]:
    """Apply ``body`` (a HostConfig subset); returns dockerd's warnings. On failure nothing changes."""
    c = containers.get(ref)
    new = dict(c.host_config)
    for key in RESOURCE_KEYS:
        if key in body and body[key] is not None and (body[key] != 0 or key == "PidsLimit"):
            new[key] = body[key]
    if body.get("PidsLimit") is not None and body["PidsLimit"] <= 0:
        new["PidsLimit"] = None  # 0 or -1: unlimited
    if new.get("Memory") and new["Memory"] < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory limit allowed is 6MB")
    if new.get("Memory") and new.get("MemorySwap") and new["MemorySwap"] > 0 and new["MemorySwap"] < new["Memory"]:
        raise errors.InvalidParameter("Minimum memoryswap limit should be larger than memory limit, "
                                      "see usage for details")
    if body.get("NanoCpus") and (new.get("CpuQuota") or new.get("CpuPeriod")) and not body.get("CpuQuota"):
        raise errors.InvalidParameter("Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota "
                                      "has already been set")
    policy = body.get("RestartPolicy")
    if policy and policy.get("Name"):
        if c.host_config.get("AutoRemove") and policy["Name"] != "no":
            raise errors.InvalidParameter("Restart policy cannot be updated because AutoRemove is enabled for "
                                          "the container")
        new["RestartPolicy"] = {"Name": policy["Name"], "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
        validate_restart_policy(new)
    specmod.validate_host_config(new)
    if c.state.status in (RUNNING, PAUSED):
        task = containers.task(c)
        try:
            task.update(specmod.resources(new))
        except errors.DockyardError as e:
            try:  # runc may have written some controllers before the one that refused
                task.update(specmod.resources(c.host_config))
            except errors.DockyardError:
                pass
            raise errors.InvalidParameter(f"Cannot update container {c.id}: {e}") from None
    c.host_config = new
    c.save(containers.directory(c.id))
    publish("container", "update", c.id, {"image": c.image_name, "name": c.name.lstrip("/")})
    return []
