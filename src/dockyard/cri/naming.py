"""How pods and their containers are named and labelled in the engine, as cri-dockerd does it.

An app container is the engine container ``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``, a pod's
pause container (only pods sharing their PID namespace have one) ``k8s_POD_<pod>_<namespace>_<uid>_<attempt>``,
so ``docker ps`` tells them apart. The kubelet's labels are the container's labels, its annotations
labels prefixed ``annotation.``, and the ``io.kubernetes.*`` labels below say what a container is to the
CRI: what the CRI reports of a container is read back from the engine's records (a pod's from its
sandbox record, ``sandboxstore``), so it survives a daemon restart.

The engine merges an image's labels into a container's, so the CRI's own label and annotation keys are
kept, with the metadata, in one JSON label (``CRI_KEY``) to give back exactly what the kubelet set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .. import errors

TYPE_LABEL = "io.kubernetes.docker.type"
SANDBOX = "podsandbox"
CONTAINER = "container"
SANDBOX_ID_LABEL = "io.kubernetes.sandbox.id"
LOG_PATH_LABEL = "io.kubernetes.container.logpath"
ANNOTATION_PREFIX = "annotation."
CRI_KEY = "io.kubernetes.dockyard.cri"
PREFIX = "k8s"
POD_NAME = "POD"


@dataclass
class Meta:
    """What the CRI keeps of a sandbox or container beside the engine's record."""

    name: str
    attempt: int
    labels: dict[str, str]
    annotations: dict[str, str]
    # a sandbox's: namespace, uid, the CNI network that made its IPs, its namespace modes, log dir,
    # hostname, runtime handler; a container's: image as asked, log path
    extra: dict[str, Any]


def sandbox_name(name: str, namespace: str, uid: str, attempt: int) -> str:
    return "_".join((PREFIX, POD_NAME, name, namespace, uid, str(attempt)))


def container_name(name: str, pod_name: str, namespace: str, uid: str, attempt: int) -> str:
    return "_".join((PREFIX, name, pod_name, namespace, uid, str(attempt)))


def labels(kind: str, meta: Meta, more: dict[str, str] | None = None) -> dict[str, str]:
    out = dict(meta.labels)
    out.update({ANNOTATION_PREFIX + k: v for k, v in meta.annotations.items()})
    out.update(more or {})
    out[TYPE_LABEL] = kind
    out[CRI_KEY] = json.dumps({"name": meta.name, "attempt": meta.attempt, "labels": meta.labels,
                               "annotations": meta.annotations, **meta.extra}, separators=(",", ":"))
    return out


def meta_of(container_labels: dict[str, str]) -> Meta | None:
    """The CRI's record in a container's labels; None for a container the CRI did not make."""
    raw = container_labels.get(CRI_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Meta(str(data.pop("name")), int(data.pop("attempt")), dict(data.pop("labels")),
                    dict(data.pop("annotations")), data)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a label someone else wrote: not one of ours


def kind_of(container_labels: dict[str, str]) -> str:
    return container_labels.get(TYPE_LABEL, "") if CRI_KEY in container_labels else ""


def require(value: str, field: str) -> str:
    """A config field the CRI cannot do without; INVALID_ARGUMENT naming it otherwise."""
    if not value:
        raise errors.InvalidParameter(f"{field} is required")
    return value
