"""What dockerd shows of images: inspect's ImageInspect and the list's filters and rows."""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..util import filters as flt
from ..util import timefmt
from .service import ImageService, ref_matches
from .store import Image

LIST_FILTERS = frozenset({"dangling", "reference", "label", "before", "since", "until"})
PRUNE_FILTERS = frozenset({"dangling", "until", "label", "label!"})
log = logging.getLogger("dockyard.images")
_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Volumes", "WorkingDir",
                "Entrypoint", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell")


def inspect(image: Image, driver: str, layer_dirs: list[str], virtual_size: bool = False,
            container_fields: bool = False) -> dict[str, Any]:
    """``layer_dirs``: the image's layer directories, bottom to top. ``virtual_size`` (API < 1.44) and
    ``container_fields`` (Container and ContainerConfig, API < 1.45) add what older clients read."""
    cfg = image.config
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent,
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created") or timefmt.ZERO_TIME,
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": container_config(cfg.get("config") or {}),
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "GraphDriver": _graph_driver(driver, layer_dirs),
        "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": timefmt.rfc3339_nano(round(image.last_tag_time * 1e6) * 1000) if image.last_tag_time else timefmt.ZERO_TIME},
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    if cfg.get("os.version"):
        out["OsVersion"] = cfg["os.version"]
    if virtual_size:
        out["VirtualSize"] = image.size
    if container_fields:
        out["Container"] = cfg.get("container", "")
        out["ContainerConfig"] = container_config(cfg.get("container_config") or {})
    return out


def container_config(c: dict[str, Any]) -> dict[str, Any]:
    """An image's (container) config as inspect shows it: the fields dockerd always writes."""
    out = {k: c[k] for k in _CONFIG_KEYS if c.get(k) is not None}
    out.setdefault("Env", None)
    out.setdefault("Cmd", None)
    out.setdefault("Entrypoint", None)
    out.setdefault("WorkingDir", "")
    out.setdefault("User", "")
    out.setdefault("Labels", None)
    out.setdefault("OnBuild", None)
    out.setdefault("Volumes", None)
    return out


def _graph_driver(name: str, dirs: list[str]) -> dict[str, Any]:
    if not dirs:
        return {"Name": name, "Data": None}
    top = dirs[-1]
    if name != "overlay2":
        return {"Name": name, "Data": {"Dir": top}}
    # overlay2's names for the directories a container on the image would mount (dockerd shows them)
    layer_dir = top.rsplit("/", 1)[0]
    data = {"MergedDir": layer_dir + "/merged", "UpperDir": top, "WorkDir": layer_dir + "/work"}
    if len(dirs) > 1:
        data["LowerDir"] = ":".join(reversed(dirs[:-1]))
    return {"Name": name, "Data": data}


def rows(svc: ImageService, wanted: dict[str, list[str]], all_images: bool, with_shared_size: bool,
         refuse: Callable[[dict[str, Any]], str | None]) -> list[dict[str, Any]]:
    """`GET /images/json`: ImageSummary rows, newest first. An image whose container config ``refuse``
    finds fault with (a crafted `docker load`) is left out: it would break every client's list."""
    patterns = wanted.get("reference")
    images = svc.list(all_images=all_images, dangling=flt.bool_value(wanted.get("dangling", []), "dangling"),
                      references=patterns, labels=wanted.get("label"),
                      before=(wanted.get("before") or [None])[-1], since=(wanted.get("since") or [None])[-1],
                      until_ns=flt.parse_timestamp(wanted["until"][-1], "until") if wanted.get("until") else None)
    counts = svc.layer_use_counts() if with_shared_size else None
    out = []
    for image in images:
        wrong = refuse(image.config.get("config") or {})
        if wrong:
            log.warning("skipping image %s in the list: %s", image.id, wrong)
            continue
        try:
            row = svc.summary(image, shared_size=svc.shared_size(image, counts) if with_shared_size else -1)
        except Exception:  # one bad record must not take the list from every client
            log.exception("skipping image %s in the list", image.id)
            continue
        if patterns:
            # as dockerd: an image found by its references lists only those that matched
            for key in ("RepoTags", "RepoDigests"):
                row[key] = [r for r in row[key] or [] if any(ref_matches(p, r) for p in patterns)]
        out.append(row)
    return out
