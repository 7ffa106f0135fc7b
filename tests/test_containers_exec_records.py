"""Nothing of a removed container stays in the daemon: 1,000 execs, then `docker rm`.

On a running dockyardd the daemon is asked through its own lookups: every
exec record is inspectable while its container exists (dockerd keeps finished
execs until its exec garbage collection), none is once the container is
removed, and ``GET /info`` counts the container no more. In this process an
engine counts what each of its keepers of per-container state still holds.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import types

import docker
import pytest

from dockyard.containers.exec import ExecService
from dockyard.containers.lifecycle import Lifecycle
from dockyard.containers.state import RUNNING
from inprocess_engine import engine_with_busybox, sleeper

EXECS = 1000
CLIENTS = 4  # parallel clients: the daemon serves them at once, and the test stays well under a minute


def test_a_removed_containers_execs_are_forgotten(d) -> None:
    api = docker.APIClient(base_url=d.host, version="1.44", timeout=60)
    before = api.info()["Containers"]
    cid = api.create_container("busybox", ["sleep", "1000"])["Id"]
    api.start(cid)
    local = threading.local()

    def run_one(_: int) -> str:
        if not hasattr(local, "api"):
            local.api = docker.APIClient(base_url=d.host, version="1.44", timeout=60)
        exec_id = local.api.exec_create(cid, ["true"])["Id"]
        local.api.exec_start(exec_id, detach=True)
        return exec_id

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        exec_ids = list(pool.map(run_one, range(EXECS)))
    assert len(set(exec_ids)) == EXECS
    inspected = [api.exec_inspect(exec_id) for exec_id in exec_ids]
    assert all(e["ContainerID"] == cid for e in inspected)
    assert api.inspect_container(cid)["State"]["Running"]
    api.remove_container(cid, force=True)
    assert api.info()["Containers"] == before
    for exec_id in exec_ids:
        with pytest.raises(docker.errors.NotFound):
            api.exec_inspect(exec_id)


@pytest.fixture
def engine(tmp_path, busybox_tar):
    yield from engine_with_busybox(tmp_path, busybox_tar.path)


def test_the_engine_holds_nothing_of_a_removed_container(engine) -> None:
    """The same, counted by the engine itself: every keeper of per-container state is empty after."""
    c = engine.containers.get(sleeper(engine))
    engine.stats.stats(c.id, one_shot=False)
    engine.containers.wait(c.id, "removed")  # a wait pending across the removal is answered by it

    def run_one(_: int) -> int:
        e = engine.execs.create(c.id, {"Cmd": ["true"]})
        engine.execs.start(e.id, detach=True)
        return e.done.result(30)

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        assert set(pool.map(run_one, range(EXECS))) == {0}
    held = engine.held()
    assert (held["containers"], held["execs"], held["stats"], held["attach"], held["waits"]) == (1, EXECS, 1, 1, 1)
    engine.containers.remove(c.id, force=True)
    assert set(engine.held().values()) == {0}


def test_the_exec_collection_drops_finished_execs_only(tmp_path) -> None:
    """moby's execCommandGC: the periodic collection drops finished execs and keeps the others."""
    container = types.SimpleNamespace(id="c" * 64, state=types.SimpleNamespace(status=RUNNING), image_name="busybox",
                                      name="/x", config={})
    containers = types.SimpleNamespace(config=types.SimpleNamespace(exec_root=str(tmp_path)), lifecycle=Lifecycle(),
                                       get=lambda ref: container)
    execs = ExecService(containers, lambda kind, action, actor, attrs: None, gc_interval=0.01)
    try:
        finished = execs.create(container.id, {"Cmd": ["true"]})
        pending = execs.create(container.id, {"Cmd": ["true"]})
        finished.exit_code = 0
        deadline = time.monotonic() + 30
        while execs.count() == 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert execs.count() == 1 and execs.get(pending.id) is pending
        containers.lifecycle.exited(container.id)  # a stopped container's unstarted execs go with it
        assert execs.count() == 0
    finally:
        execs.close()


def test_exec_sync_leaves_no_exec_record(engine) -> None:
    """The CRI's ExecSync (a kubelet probe every period) forgets each exec once it has the result."""
    from dockyard.cri.execsync import exec_sync
    from dockyard.cri.status import DeadlineExceeded
    cid = sleeper(engine)
    assert exec_sync(engine, cid, ["sh", "-c", "echo out; echo err >&2; exit 3"], 10) == (3, b"out\n", b"err\n")
    with pytest.raises(DeadlineExceeded):
        exec_sync(engine, cid, ["sleep", "30"], 0.5)
    assert engine.held()["execs"] == 0
