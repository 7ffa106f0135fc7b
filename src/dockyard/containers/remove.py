"""Remove, rename and prune: the verbs that end a container or change what it is called."""

from __future__ import annotations

import shutil
import signal as signals
from typing import Callable

from .. import errors
from . import links as linksmod
from . import mounts as mountsmod
from .ops import ContainerOps
from .record import Container
from .state import PAUSED, RESTARTING, RUNNING
from .start import each, teardown, unmount


REMOVE_KILL_WAIT = 30.0


def remove(svc: ContainerOps, ref: str, force: bool = False, volumes: bool = False) -> None:
    """``volumes``: also remove the container's anonymous volumes (`rm -v`, `--rm`)."""
    c = svc.get(ref)
    if c.state.status == RESTARTING and force:
        svc.restarts.cancel(c)
    if c.state.running:
        if not force:
            state = {PAUSED: "paused", RESTARTING: "restarting"}.get(c.state.status, "running")
            procedure = "Stop the container before attempting removal or force remove"
            if state == PAUSED:
                procedure = "Unpause and then " + procedure.lower()
            raise errors.legacy(errors.Conflict(
                f'cannot remove container "{c.name}": container is {state}: stop the container before '
                f'removing or force remove'), f"You cannot remove a {state} container {c.id}. {procedure}")
        c.state.mark_stopped_by_user()
        try:
            svc.kill(c.id, signals.SIGKILL)
        except errors.Conflict:
            pass
        c.state.wait_stopped(REMOVE_KILL_WAIT)
        if c.state.running:  # the shim does not report: tear down by hand
            with svc.table.op_lock(c.id):
                if c.state.status in (RUNNING, PAUSED):
                    teardown(svc, c, svc.task(c).exit_status())
    with svc.table.op_lock(c.id):
        if svc.table.by_id(c.id) is None:
            raise errors.NotFound(f"No such container: {ref}")
        # marked in memory only: the removal must not need disk space (dockerd's SetRemovalInProgress)
        c.state.set_removing()
        each(c, "removing", lambda: svc.log_copy.discard(c.id), svc.task(c).delete, lambda: unmount(svc, c),
             lambda: svc.networks.unregister(c.id))
        try:
            svc.snapshotter.remove(c.id)
        except errors.NotFound:
            pass
        shutil.rmtree(svc.directory(c.id), ignore_errors=True)
        svc.table.discard(c)
        svc.forget_log_copier(c.id)
    svc.attach_gate.fail(c.id, errors.Conflict(f"container {c.id} was removed"))
    svc.event(c, "destroy")
    if volumes:
        mountsmod.remove_anonymous(c.mounts, svc.volumes)
    svc.lifecycle.removed(c.id)
    c.state.set_removed()  # last: `docker run --rm` waits for this, and nothing of it is left by then


def rename(svc: ContainerOps, ref: str, new_name: str) -> None:
    c = svc.get(ref)
    old = svc.table.rename(c, new_name)
    svc.save(c)
    for other in svc.all():  # links name both ends: dockerd's link index follows a rename
        renamed = linksmod.renamed(other.host_config.get("Links"), old, c.name)
        if renamed != other.host_config.get("Links"):
            set_links(svc, other, renamed)
    svc.networks.rename(c.id, c.name)
    svc.event(c, "rename", {"oldName": old})


def set_links(svc: ContainerOps, c: Container, links: list[str] | None) -> None:
    with svc.table.op_lock(c.id):
        c.host_config["Links"] = links
        svc.save(c)


def prune(svc: ContainerOps, keep: Callable[[Container], bool]) -> tuple[list[str], int]:
    """The stopped containers ``keep`` refuses, removed; and, as dockerd counts it, the bytes of
    their writable layers."""
    deleted = []
    reclaimed = 0
    for c in svc.all():
        if c.state.running or keep(c):
            continue
        size = svc.sizes(c)[0]
        try:
            remove(svc, c.id)
        except errors.DockyardError:
            continue
        deleted.append(c.id)
        reclaimed += size
    return deleted, reclaimed
