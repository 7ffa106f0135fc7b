"""The restart manager: what follows an exit (``--rm``, the restart policy and its backoff) and ``docker restart``."""

from __future__ import annotations

import logging
import threading

from .. import errors
from ..util import timefmt
from .ops import ContainerOps
from .record import Container
from .start import start_locked
from .state import EXITED, RESTARTING


log = logging.getLogger("dockyard.containers")

# dockerd's backoff: doubles from 100 ms up to a minute, back to 100 ms once a run lasted 10 s
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER = 0.1, 60.0, 10.0


def backoff(restart_count: int, ran_for: float) -> float:
    """The delay before the next restart by the policy."""
    if ran_for >= BACKOFF_RESET_AFTER:
        return BACKOFF_FIRST
    return min(BACKOFF_FIRST * (2 ** restart_count), BACKOFF_MAX)


def wanted_at_boot(c: Container) -> bool:
    """Whether the policy restarts a stopped container when the daemon starts (dockerd's ShouldRestart)."""
    policy = c.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name == "no" or timefmt.parse_seconds(c.state.finished_at) == 0:
        return False
    if name == "always":
        return True  # even after `docker stop`: dockerd brings these back when it starts
    if c.state.stopped_by_user:
        return False
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return c.state.exit_code != 0 and not (limit and c.state.restart_count >= limit)
    return True


def wanted_after_exit(c: Container) -> bool:
    """Whether the policy restarts ``c`` after the exit it just had."""
    policy = c.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if c.state.stopped_by_user or name == "no":
        return False
    if name == "on-failure":
        if c.state.exit_code == 0:
            return False
        limit = int(policy.get("MaximumRetryCount") or 0)
        if limit and c.state.restart_count >= limit:
            return False
    return True


class RestartManager:
    def __init__(self, svc: ContainerOps) -> None:
        self.svc = svc

    def after_exit(self, c: Container) -> None:
        """An exit's sequel: removal for ``--rm``, else a restart if the policy wants one, after the backoff."""
        svc = self.svc
        if svc.closed:
            return
        if c.host_config.get("AutoRemove"):
            try:
                svc.remove(c.id, force=True, volumes=True)
            except errors.NotFound:
                pass
            return
        if not wanted_after_exit(c):
            return
        delay = backoff(c.state.restart_count, timefmt.parse_seconds(c.state.finished_at) - timefmt.parse_seconds(c.state.started_at))
        with svc.table.op_lock(c.id):
            if c.state.status != EXITED or c.state.stopped_by_user:
                return
            c.state.set_restarting()  # as dockerd: "Restarting (code) … ago", still listed by `ps`
            svc.save(c)
        timer = threading.Timer(delay, self.restart_by_policy, args=(c.id,))
        timer.daemon = True
        timer.start()

    def at_boot(self, container_id: str) -> None:
        """Restart by the policy as the daemon starts, on a thread of its own."""
        threading.Thread(target=self.restart_by_policy, args=(container_id, True), daemon=True).start()

    def restart_by_policy(self, container_id: str, at_boot: bool = False) -> None:
        """A restart the policy asks for; ``at_boot``: by the daemon as it starts, which (as dockerd's
        restore, a start that resets the restart manager) begins a new count."""
        svc = self.svc
        c = svc.table.by_id(container_id)
        if c is None or svc.closed:
            return
        with svc.table.op_lock(container_id):
            if c.state.stopped_by_user or c.state.status not in (EXITED, RESTARTING):
                return
            c.state.begin_restart_count(at_boot)
            try:
                start_locked(svc, c)
            except Exception as e:
                log.warning("restart policy: starting %s failed: %s", container_id, e)
                if c.state.status == RESTARTING:  # it failed before the task existed (a mount)
                    c.state.cancel_restart(by_user=False)
                    svc.save(c)
        # no "restart" event here: dockerd reports a policy restart as start (after the die) only

    def cancel(self, c: Container) -> bool:
        """A container waiting out its restart backoff is stopped where it is; False if it is not waiting."""
        with self.svc.table.op_lock(c.id):
            if c.state.status != RESTARTING:
                return False
            c.state.cancel_restart(by_user=True)
            self.svc.save(c)
        return True

    def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        """``docker restart``: stop if it runs, then start; a failure in dockerd's words, which name the
        container as the client did ("Cannot restart container <ref>: …")."""
        svc = self.svc
        c = svc.get(ref)
        try:
            if c.state.running:
                svc.stop(c.id, timeout, sig)
            with svc.table.op_lock(c.id):
                if not c.state.running:
                    c.state.mark_stopped_by_user(False)
                    start_locked(svc, c)
        except errors.DockyardError as e:
            raise errors.wrap(e, f"Cannot restart container {ref}") from None
        svc.event(c, "restart")
