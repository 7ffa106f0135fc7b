"""Nothing of a removed container stays in the daemon: 1,000 execs, then `docker rm`.

On a running dockyardd the daemon is asked through its own lookups: every
exec record is inspectable while its container exists (dockerd keeps finished
execs until its exec garbage collection), none is once the container is
removed, and ``GET /info`` counts the container no more. In this process an
engine counts what each of its keepers of per-container state still holds.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import threading
import uuid

import docker
import pytest

from dockyard.daemon.config import DaemonConfig
from dockyard.engine.engine import Engine

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
    """An engine in this process (no API), busybox loaded, on a bridge of its own without iptables."""
    bridge = "dy" + uuid.uuid4().hex[:10]
    e = Engine(DaemonConfig(data_root=str(tmp_path / "data"), exec_root=str(tmp_path / "exec"),
                            bridge_name=bridge, iptables=False))
    with open(busybox_tar.path, "rb") as f:
        e.images.load(f)
    yield e
    for c in e.containers.all():
        e.containers.remove(c.id, force=True)
    e.close()
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def test_the_engine_holds_nothing_of_a_removed_container(engine) -> None:
    """The same, counted by the engine itself: every keeper of per-container state is empty after."""
    c = engine.containers.create(None, {"Image": "busybox", "Cmd": ["sleep", "1000"],
                                        "HostConfig": {"NetworkMode": "none"}})
    engine.containers.start(c.id)
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
