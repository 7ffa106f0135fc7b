"""What dockerd stores in a new container's HostConfig when the client left a field unset, so that
inspect shows the same values and the spec is built from them (dockerd's create-time adaptation)."""

from __future__ import annotations

from typing import Any

from ..model import container as model
from ..runtime import spec as specmod


def apply(host_config: dict[str, Any], shareable_ipc: bool) -> None:
    """``shareable_ipc``: the client speaks an API older than 1.40, whose default IPC mode was
    "shareable" (dockerd's router keeps it for them)."""
    hc = host_config
    if not hc.get("ShmSize"):
        hc["ShmSize"] = model.DEFAULT_SHM_SIZE
    pids = hc.get("PidsLimit")
    if isinstance(pids, int) and pids <= 0:
        hc["PidsLimit"] = None  # 0 and -1 both mean unlimited: dockerd stores no limit
    if not hc.get("IpcMode"):
        hc["IpcMode"] = model.LEGACY_IPC_MODE if shareable_ipc else model.DEFAULT_IPC_MODE
    if not hc.get("CgroupnsMode"):
        hc["CgroupnsMode"] = "private" if specmod.cgroup_version() == "2" else "host"
    if hc.get("Privileged"):
        return
    # an explicit empty list (systempaths=unconfined) stays empty
    if hc.get("MaskedPaths") is None:
        hc["MaskedPaths"] = specmod.masked_paths()
    if hc.get("ReadonlyPaths") is None:
        hc["ReadonlyPaths"] = list(specmod.READONLY_PATHS)
