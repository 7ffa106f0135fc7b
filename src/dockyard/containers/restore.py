"""Restore: the containers rebuilt from their records and shims when the daemon starts (live restore)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import threading
from typing import Callable

from .. import errors
from . import mounts as mountsmod
from .ops import ContainerOps
from .record import RECORD, Container
from .state import PAUSED, REMOVING, RESTARTING
from .restart import wanted_at_boot
from .start import each, teardown, unmount


log = logging.getLogger("dockyard.containers")


def restore(svc: ContainerOps) -> None:
    """Load every record; settle the containers whose shim ended while the daemon was down, watch
    the ones still running, finish interrupted removals and starts, and restart by policy."""
    to_start = []
    exited: list[Container] = []  # their shim ended while the daemon was down
    finishing: list[Callable[[], None]] = []
    for cid in sorted(os.listdir(svc.root)):
        directory = os.path.join(svc.root, cid)
        try:
            c = Container.load(directory)
        except (OSError, ValueError, TypeError):
            if not os.path.exists(os.path.join(directory, RECORD)):
                shutil.rmtree(directory, ignore_errors=True)  # a create that never finished
            else:
                log.warning("skipping unreadable container record in %s", directory)
            continue
        svc.table.add(c)
        if c.state.status == REMOVING:
            threading.Thread(target=_finish_removal, args=(svc, c.id), daemon=True).start()
            continue
        if c.state.status == RESTARTING:  # the daemon went down during the backoff
            c.state.cancel_restart(by_user=False)
            to_start.append(c.id)
            continue
        task = svc.task(c)
        if not c.state.running:
            if task.leftover():
                # the daemon died in a start it never acknowledged (or in an exit's teardown): undo it,
                # or a container would run under a record that says it does not
                finishing.append(lambda c=c: _undo_interrupted_start(svc, c))
            copier = svc.log_copier(c)
            if copier and os.path.exists(copier.journal) and os.path.getsize(copier.journal):
                finishing.append(copier.finish)  # copy what the shim left
            if wanted_at_boot(c):
                to_start.append(c.id)
            continue
        fd = task.exit_fd()
        if fd is None:
            exited.append(c)
            continue
        _adopt_running(svc, c, fd)
    # settled before the API serves: `ps` right after a restart must show their real state and exit code
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for fut in [pool.submit(_restore_exit, svc, c) for c in exited] + [pool.submit(f) for f in finishing]:
            fut.result()
    for cid in to_start:
        svc.restarts.at_boot(cid)


def _adopt_running(svc: ContainerOps, c: Container, exit_fd: int) -> None:
    """A container whose shim outlived the daemon: watched again, as if the daemon had never left."""
    task = svc.task(c)
    paused = (task.state() or {}).get("status") == "paused"
    if paused and c.state.status != PAUSED:
        c.state.set_paused()
    elif not paused and c.state.status == PAUSED:
        c.state.set_unpaused()
    mountsmod.adopt(c.id, c.mounts, svc.volumes)
    copier = svc.log_copier(c)
    if copier:
        svc.log_copy.add(c.id, copier)  # catches up with what the shim wrote while we were down
    svc.attach_gate.open(c.id, task.attach)
    svc.monitor.watch(c.id, exit_fd)
    svc.lifecycle.restored(c.id)


def _undo_interrupted_start(svc: ContainerOps, c: Container) -> None:
    each(c, "undoing the interrupted start of", svc.task(c).delete, lambda: unmount(svc, c),
         lambda: svc.networks.detach(c.id))


def _restore_exit(svc: ContainerOps, c: Container) -> None:
    with svc.table.op_lock(c.id):
        teardown(svc, c, svc.task(c).exit_status())
    if c.host_config.get("AutoRemove"):
        threading.Thread(target=svc.restarts.after_exit, args=(c,), daemon=True).start()
    elif wanted_at_boot(c):  # dockerd's restore treats it as any stopped container
        svc.restarts.at_boot(c.id)


def _finish_removal(svc: ContainerOps, container_id: str) -> None:
    try:
        svc.remove(container_id, force=True)
    except errors.DockyardError as e:
        log.warning("finishing the removal of %s: %s", container_id, e)
