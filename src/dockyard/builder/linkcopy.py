"""``COPY --link`` / ``ADD --link``: a layer that does not depend on the layers below it.

As BuildKit: the files are copied into an empty destination (parent directories made fresh, root 0755;
the destination is a directory only when it ends with ``/`` or several sources are given), so the layer is
the same whatever the image holds. Its cache key leaves the parent out (the sources' checksum, the resolved
destination and the flags), and a hit made on another parent is stacked on the current one: the same diff
(the layer store clones it under the new chain) with the current config, as a new image.
"""

from __future__ import annotations

import copy
from typing import Any

from .cache import step_key

_IMAGE_ONLY = ("container", "container_config", "id", "parent")


def key(created_by: str, target: str, flags: dict[str, Any]) -> str:
    return step_key("--link", created_by, {"dest": target, "_flags": flags})


def restack(images: Any, hit_id: str, parent_id: str | None, config: dict[str, Any]) -> str:
    """The image of the cached --link step ``hit_id`` on ``parent_id`` (itself when already there)."""
    hit = images.store.get(hit_id)
    if (hit.parent or None) == (parent_id or None):
        return hit_id
    entry = (hit.config.get("history") or [])[-1]
    diff_id = (hit.config.get("rootfs") or {}).get("diff_ids", [])[-1]
    parent = images.store.get(parent_id) if parent_id else None
    depth = len((parent.config.get("rootfs") or {}).get("diff_ids") or []) if parent is not None else 0
    for child in images.store.children(parent_id) if parent_id else []:
        # made on this parent before (the entry now names another): the same image again
        theirs = (child.config.get("rootfs") or {}).get("diff_ids") or []
        if len(theirs) == depth + 1 and theirs[-1] == diff_id and child.config.get("config") == config and \
                (child.config.get("history") or [{}])[-1].get("created_by") == entry.get("created_by"):
            return str(child.id)
    if parent is not None:
        out = copy.deepcopy(parent.config)
        for k in _IMAGE_ONLY:
            out.pop(k, None)
    else:
        out = {k: hit.config[k] for k in ("architecture", "os") if k in hit.config}
        out.update(rootfs={"type": "layers", "diff_ids": []}, history=[])
    out["config"] = copy.deepcopy(config)
    out["created"] = entry.get("created") or hit.config.get("created")
    out["docker_version"] = hit.config.get("docker_version", "")
    out["history"] = list(out.get("history") or []) + [entry]
    out["rootfs"] = {"type": "layers", "diff_ids": list((out.get("rootfs") or {}).get("diff_ids") or []) + [diff_id]}
    images.layers.clone(hit.top_layer, parent.top_layer if parent is not None else None)
    return str(images.create_image_from_config(out, parent_id).id)
