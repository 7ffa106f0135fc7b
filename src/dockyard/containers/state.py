"""A container's state: its named transitions and the waits on them (moby's container/state.go).

Every change of ``status`` goes through a method here, which checks that the
transition is one the lifecycle can make: a wrong one is a bug in the engine
and raises ``IllegalTransition`` rather than leaving a record that says
something the runtime does not. The waits (``docker wait``'s conditions and
the stop/kill timeouts) are answered here too, by the transition that ends
them, so no other part keeps a table of waiters.

The persisted fields are the dataclass fields (``config.v2.json``'s ``state``
object); the waiters are plain attributes and never written.
"""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..util import timefmt

# Docker's states (State.Status)
CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "removing", "exited", "dead")
NOT_RUNNING, NEXT_EXIT, REMOVED = "not-running", "next-exit", "removed"
CONDITIONS = ("", NOT_RUNNING, NEXT_EXIT, REMOVED)

WaitResult = dict[str, Any]


class IllegalTransition(errors.SystemError_):
    """The engine asked for a state change the lifecycle does not have (a bug, told as a 500)."""


@dataclass
class State:
    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = timefmt.ZERO_TIME
    finished_at: str = timefmt.ZERO_TIME
    restart_count: int = 0
    stopped_by_user: bool = False

    def __post_init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._waiters: list[tuple[str, concurrent.futures.Future[WaitResult]]] = []
        self._removed = False

    @property
    def running(self) -> bool:
        return self.status in (RUNNING, PAUSED, RESTARTING)

    # -- transitions -------------------------------------------------------------------
    def set_running(self, pid: int, started_at: str) -> None:
        """The task runs: a new run, which keeps nothing of the last one but its restart count."""
        with self._cond:
            self._check("set_running", CREATED, EXITED, RESTARTING)
            self.status, self.pid, self.started_at, self.finished_at = RUNNING, pid, started_at, timefmt.ZERO_TIME
            self.exit_code, self.error, self.oom_killed, self.stopped_by_user = 0, "", False, False

    def set_exited(self, code: int, oom_killed: bool, finished_at: str, error: str = "") -> None:
        """The task ended."""
        with self._cond:
            self._check("set_exited", RUNNING, PAUSED)
            self.status, self.pid, self.exit_code = EXITED, 0, code
            self.error, self.oom_killed, self.finished_at = error, oom_killed, finished_at
        self._release(NOT_RUNNING, NEXT_EXIT)

    def set_ran_outside(self, code: int, started_at: str, finished_at: str) -> None:
        """A created container whose process ran outside the service (a build step kept as a container)."""
        with self._cond:
            self._check("set_ran_outside", CREATED)
            self.status, self.exit_code, self.started_at, self.finished_at = EXITED, code, started_at, finished_at
        self._release(NOT_RUNNING, NEXT_EXIT)

    def set_start_failed(self, error: str, code: int) -> None:
        """A start that never ran the process: a created container stays created (as dockerd)."""
        with self._cond:
            self._check("set_start_failed", CREATED, EXITED, RESTARTING)
            if self.status != CREATED:
                self.status = EXITED
            self.error, self.exit_code = error, code
        self._release(NOT_RUNNING, NEXT_EXIT)

    def set_restarting(self) -> None:
        """Waiting out the restart policy's backoff; ``ps`` still lists it as running."""
        with self._cond:
            self._check("set_restarting", EXITED)
            self.status = RESTARTING

    def cancel_restart(self, by_user: bool) -> None:
        """The backoff ends without a start (``docker stop``/``kill``/``rm -f``, or a daemon that
        went down during it)."""
        with self._cond:
            self._check("cancel_restart", RESTARTING)
            self.status = EXITED
            if by_user:
                self.stopped_by_user = True
        self._release(NOT_RUNNING, NEXT_EXIT)

    def set_paused(self) -> None:
        with self._cond:
            self._check("set_paused", RUNNING)
            self.status = PAUSED

    def set_unpaused(self) -> None:
        with self._cond:
            self._check("set_unpaused", PAUSED)
            self.status = RUNNING

    def set_removing(self) -> None:
        """Removal in progress (dockerd's SetRemovalInProgress); again is fine: a restore finishes it."""
        with self._cond:
            self._check("set_removing", CREATED, EXITED, DEAD, REMOVING)
            self.status = REMOVING

    def set_removed(self) -> None:
        """The record is gone: every wait ends, ``removed`` ones included."""
        with self._cond:
            self._check("set_removed", REMOVING)
            self._removed = True
        self._release(NOT_RUNNING, NEXT_EXIT, REMOVED)

    def mark_stopped_by_user(self, value: bool = True) -> None:
        """Set by `docker stop`/`kill`/`rm -f` (a restart policy leaves it stopped), cleared by a start."""
        with self._cond:
            self.stopped_by_user = value

    def begin_restart_count(self, at_boot: bool) -> None:
        """A start by the policy counts one more restart; the daemon's own start at boot begins anew."""
        with self._cond:
            self.restart_count = 0 if at_boot else self.restart_count + 1

    def reset_restart_count(self) -> None:
        """A start by the user begins a new restart history, as dockerd's."""
        with self._cond:
            self.restart_count = 0

    def _check(self, name: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(f"container state: {name} from {self.status!r}")

    # -- waits ------------------------------------------------------------------------
    def result(self) -> WaitResult:
        """What ``docker wait`` answers: the last exit code and the error of the last run."""
        return {"StatusCode": self.exit_code, "Error": {"Message": self.error} if self.error else None}

    def wait(self, condition: str = NOT_RUNNING) -> concurrent.futures.Future[WaitResult]:
        """A future answered when ``condition`` holds (now, if it already does)."""
        if condition not in CONDITIONS:
            raise errors.InvalidParameter(f"invalid condition: \"{condition}\"")
        condition = condition or NOT_RUNNING
        fut: concurrent.futures.Future[WaitResult] = concurrent.futures.Future()
        with self._cond:
            done = self._removed or (condition == NOT_RUNNING and not self.running)
            if not done:
                self._waiters.append((condition, fut))
                return fut
        fut.set_result(self.result())
        return fut

    def wait_stopped(self, timeout: float | None) -> bool:
        """Block until the container does not run; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self.running, timeout)

    def waiting(self) -> int:
        """How many ``docker wait`` futures are pending (the engine's debug counts)."""
        with self._cond:
            return len(self._waiters)

    def _release(self, *kinds: str) -> None:
        """Wake ``wait_stopped`` and answer the futures of ``kinds``."""
        with self._cond:
            self._cond.notify_all()
            due = [f for k, f in self._waiters if k in kinds]
            self._waiters = [(k, f) for k, f in self._waiters if k not in kinds]
        result = self.result()
        for fut in due:  # outside the lock: a future's callbacks run here
            if not fut.done():
                fut.set_result(result)
