"""The container state machine alone (containers/state.py): every transition from every state, and the waits."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Callable

import pytest

from dockyard import errors
from dockyard.containers.record import Container
from dockyard.containers.state import (CREATED, DEAD, EXITED, PAUSED, REMOVING, RESTARTING, RUNNING,
                                       IllegalTransition, State)
from dockyard.util.timefmt import ZERO_TIME

STATUSES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)
T0, T1 = "2026-01-01T00:00:00.000000000Z", "2026-01-01T00:00:05.000000000Z"

# transition → (what it does, the states it may start from, the state it ends in; None: unchanged)
TRANSITIONS: dict[str, tuple[Callable[[State], None], tuple[str, ...], dict[str, str]]] = {
    "set_running": (lambda s: s.set_running(42, T0), (CREATED, EXITED, RESTARTING), {}),
    "set_exited": (lambda s: s.set_exited(3, True, T1, "boom"), (RUNNING, PAUSED), {}),
    "set_ran_outside": (lambda s: s.set_ran_outside(1, T0, T1), (CREATED,), {}),
    "set_start_failed": (lambda s: s.set_start_failed("no such file", 127), (CREATED, EXITED, RESTARTING),
                         {CREATED: CREATED}),
    "set_restarting": (lambda s: s.set_restarting(), (EXITED,), {}),
    "cancel_restart": (lambda s: s.cancel_restart(by_user=True), (RESTARTING,), {}),
    "set_paused": (lambda s: s.set_paused(), (RUNNING,), {}),
    "set_unpaused": (lambda s: s.set_unpaused(), (PAUSED,), {}),
    "set_removing": (lambda s: s.set_removing(), (CREATED, EXITED, DEAD, REMOVING), {}),
    "set_removed": (lambda s: s.set_removed(), (REMOVING,), {}),
}
ENDS = {"set_running": RUNNING, "set_exited": EXITED, "set_ran_outside": EXITED, "set_start_failed": EXITED,
        "set_restarting": RESTARTING, "cancel_restart": EXITED, "set_paused": PAUSED, "set_unpaused": RUNNING,
        "set_removing": REMOVING, "set_removed": REMOVING}


def in_state(status: str) -> State:
    return State(status=status, pid=7 if status in (RUNNING, PAUSED) else 0, exit_code=9, error="old",
                 started_at=T0, restart_count=2)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_every_transition_from_every_state(name: str, status: str) -> None:
    apply, allowed, special = TRANSITIONS[name]
    s = in_state(status)
    before = dataclasses.asdict(s)
    if status in allowed:
        apply(s)
        assert s.status == special.get(status, ENDS[name])
    else:
        with pytest.raises(IllegalTransition) as info:
            apply(s)
        assert isinstance(info.value, errors.SystemError_)  # an internal error: a 500, never a client's fault
        assert dataclasses.asdict(s) == before  # refused without a trace


def test_running_begins_a_new_run_and_exit_records_it() -> None:
    s = in_state(EXITED)
    s.stopped_by_user, s.oom_killed, s.finished_at = True, True, T1
    s.set_running(42, T0)
    assert (s.pid, s.exit_code, s.error, s.oom_killed, s.stopped_by_user) == (42, 0, "", False, False)
    assert (s.started_at, s.finished_at, s.restart_count, s.running) == (T0, ZERO_TIME, 2, True)
    s.set_exited(137, True, T1, "killed")
    assert (s.status, s.pid, s.exit_code, s.oom_killed, s.error, s.finished_at) == (EXITED, 0, 137, True, "killed", T1)
    assert not s.running


def test_restart_bookkeeping() -> None:
    s = in_state(EXITED)
    s.begin_restart_count(at_boot=False)
    assert s.restart_count == 3
    s.begin_restart_count(at_boot=True)
    assert s.restart_count == 0
    s.set_restarting()
    assert s.running  # `ps` lists a container in its backoff
    s.cancel_restart(by_user=False)
    assert (s.status, s.stopped_by_user) == (EXITED, False)


def test_not_running_wait_is_answered_at_once_when_stopped() -> None:
    s = in_state(EXITED)
    assert s.wait("not-running").result(0) == {"StatusCode": 9, "Error": {"Message": "old"}}
    assert s.wait("").done()


def test_waits_end_with_the_transition_that_ends_them() -> None:
    s = in_state(RUNNING)
    not_running, next_exit, removed = s.wait("not-running"), s.wait("next-exit"), s.wait("removed")
    assert s.waiting() == 3 and not any(f.done() for f in (not_running, next_exit, removed))
    s.set_paused()
    s.set_unpaused()
    assert not any(f.done() for f in (not_running, next_exit, removed))
    s.set_exited(3, False, T1)
    assert not_running.result(0) == next_exit.result(0) == {"StatusCode": 3, "Error": None}
    assert not removed.done()
    later = s.wait("next-exit")  # a stopped container's next exit is that of its next run
    assert not later.done()
    s.set_running(43, T0)
    assert not later.done()
    s.set_exited(0, False, T1)
    assert later.result(0)["StatusCode"] == 0
    s.set_removing()
    assert not removed.done()
    s.set_removed()
    assert removed.result(0) == {"StatusCode": 0, "Error": None}
    assert s.waiting() == 0
    assert s.wait("next-exit").done()  # nothing comes after the removal: every wait answers


def test_a_failed_start_and_a_cancelled_restart_end_the_waits() -> None:
    s = in_state(EXITED)
    next_exit = s.wait("next-exit")
    s.set_start_failed("exec: \"nope\": executable file not found", 127)
    assert next_exit.result(0) == {"StatusCode": 127,
                                   "Error": {"Message": "exec: \"nope\": executable file not found"}}
    s.set_restarting()
    not_running = s.wait("not-running")
    assert not not_running.done()
    s.cancel_restart(by_user=True)
    assert not_running.result(0)["StatusCode"] == 127 and s.stopped_by_user


def test_invalid_condition_is_a_client_error() -> None:
    with pytest.raises(errors.InvalidParameter, match='invalid condition: "soon"'):
        in_state(RUNNING).wait("soon")


def test_wait_stopped_blocks_until_the_exit() -> None:
    s = in_state(RUNNING)
    assert s.wait_stopped(0) is False
    seen: list[bool] = []
    waiter = threading.Thread(target=lambda: seen.append(s.wait_stopped(None)))
    waiter.start()
    s.set_exited(0, False, T1)
    waiter.join(10)
    assert seen == [True]
    assert s.wait_stopped(0) is True


def test_persisted_fields_are_the_records_and_waiters_are_not(tmp_path) -> None:
    s = in_state(RUNNING)
    s.wait("next-exit")
    assert list(dataclasses.asdict(s)) == ["status", "pid", "exit_code", "error", "oom_killed", "started_at",
                                           "finished_at", "restart_count", "stopped_by_user"]
    c = Container(id="a" * 64, name="/x", created=T0, image_id="sha256:" + "b" * 64, image_name="busybox",
                  config={"Image": "busybox"}, host_config={}, path="sh", args=[], state=s)
    c.save(str(tmp_path))
    record = json.loads((tmp_path / "config.v2.json").read_text())
    assert record["state"] == dataclasses.asdict(s)
    loaded = Container.load(str(tmp_path))
    assert loaded.state == s and loaded.state.waiting() == 0
    loaded.state.set_exited(1, False, T1)  # a loaded state has its own waits and transitions
    assert loaded.state.wait().result(0)["StatusCode"] == 1
