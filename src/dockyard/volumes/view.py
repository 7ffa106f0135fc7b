"""What dockerd shows of volumes: the list filters and the prune selection (the Volume object itself
is ``service.describe``)."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ..util import filters as flt
from .local import Volume

LIST_FILTERS = frozenset({"dangling", "driver", "label", "name"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})
log = logging.getLogger("dockyard.volumes")


def select(volumes: Iterable[Volume], wanted: dict[str, list[str]], in_use: Callable[[str], bool]) -> list[Volume]:
    """The volumes the list filters choose, by name."""
    dangling = flt.bool_value(wanted.get("dangling", []), "dangling")
    out = []
    for vol in sorted(volumes, key=lambda v: v.name):
        if dangling is not None and in_use(vol.name) == dangling:
            continue
        if wanted.get("name") and not any(n in vol.name for n in wanted["name"]):
            continue
        if wanted.get("driver") and vol.driver not in wanted["driver"]:
            continue
        if wanted.get("label") and not flt.match_labels(vol.labels, wanted["label"]):
            continue
        out.append(vol)
    return out


def prune_keep(wanted: dict[str, list[str]], all_: bool) -> Callable[[Volume], bool]:
    """Which unused volumes `volume prune` leaves: named ones too unless ``all_`` (API >= 1.42)."""
    selector = flt.LabelSelector.of(wanted)
    return lambda vol: (not all_ and not vol.anonymous) or not selector.selects(vol.labels)
