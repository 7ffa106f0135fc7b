"""Signals to a running container: kill, stop (signal, grace period, SIGKILL), pause and unpause."""

from __future__ import annotations

import os
import signal as signals

from .. import errors
from .ops import ContainerOps
from .record import Container
from .state import PAUSED, RUNNING


DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 10.0  # dockerd's daemon.Kill waits this long before killing the pid itself


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    """``KILL``, ``SIGKILL`` or ``9``; unknown names are a 400 as in dockerd."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if num <= 0 or num >= 65:
            raise errors.InvalidParameter(f"Invalid signal: {value}")
        return num
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signals.Signals, name, None) if name in signals.Signals.__members__ else None
    if sig is None:
        raise errors.InvalidParameter(f"Invalid signal: {value}")
    return int(sig)


def kill(svc: ContainerOps, ref: str, sig: int = signals.SIGKILL) -> None:
    c = svc.get(ref)
    if not c.state.running:
        raise errors.Conflict(f"Container {c.id} is not running")
    if svc.restarts.cancel(c):
        svc.event(c, "kill", {"signal": str(sig)})
        return
    if sig in (signals.SIGKILL, signals.SIGTERM, signals.SIGINT):
        c.state.mark_stopped_by_user()
    svc.event(c, "kill", {"signal": str(sig)})
    task = svc.task(c)
    try:
        task.kill(sig, all_processes=sig == signals.SIGKILL)
    except errors.Conflict:
        pass  # it exited meanwhile
    if c.state.status == PAUSED and sig == signals.SIGKILL:
        # a frozen process cannot die; thaw it so the kill lands
        try:
            task.resume()
        except errors.DockyardError:
            pass
    if sig == signals.SIGKILL:
        _wait_killed(c)


def _wait_killed(c: Container) -> None:
    """As dockerd's daemon.Kill: a SIGKILL returns once the container is seen dead, so an inspect
    right after shows it exited (137); a process the runtime did not reach is killed by its pid."""
    if c.state.wait_stopped(KILL_WAIT):
        return
    pid = c.state.pid
    if pid > 0:
        try:
            os.kill(pid, signals.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    c.state.wait_stopped(KILL_WAIT)


def stop(svc: ContainerOps, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
    c = svc.get(ref)
    if not c.state.running:
        raise errors.NotModified("container already stopped")
    if svc.restarts.cancel(c):
        svc.event(c, "stop")
        return
    stop_signal = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM", signals.SIGTERM)
    if timeout is None:
        timeout = c.config.get("StopTimeout")
    if timeout is None:
        timeout = DEFAULT_STOP_TIMEOUT
    c.state.mark_stopped_by_user()
    try:
        kill(svc, c.id, stop_signal)
    except errors.Conflict:
        pass
    if timeout < 0 or not c.state.wait_stopped(timeout):
        if timeout >= 0:
            try:
                kill(svc, c.id, signals.SIGKILL)
            except errors.Conflict:
                pass
        c.state.wait_stopped(None)
    svc.event(c, "stop")


def pause(svc: ContainerOps, ref: str) -> None:
    c = svc.get(ref)
    with svc.table.op_lock(c.id):
        if c.state.status == PAUSED:
            raise errors.Conflict(f"Container {c.id} is already paused")
        if c.state.status != RUNNING:
            raise errors.Conflict(f"Container {c.id} is not running")
        svc.task(c).pause()
        c.state.set_paused()
        svc.save(c)
    svc.event(c, "pause")


def unpause(svc: ContainerOps, ref: str) -> None:
    c = svc.get(ref)
    with svc.table.op_lock(c.id):
        if c.state.status != PAUSED:
            raise errors.Conflict(f"Container {c.id} is not paused")
        svc.task(c).resume()
        c.state.set_unpaused()
        svc.save(c)
    svc.event(c, "unpause")
