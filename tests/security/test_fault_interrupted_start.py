"""A start the daemon never acknowledged (kill -9 between runc's start and the record write) is undone at restore.

Found by the chaos round (tests/security/chaos.py): a container ran under runc while its record said
``created``, so `docker ps` hid a live process and `docker rm` left it behind. Reproduced here without a
race: a started container's record is set back to ``created`` while the daemon is down, which is what a
kill -9 inside ``start`` leaves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess


def _runc_state(d, cid: str) -> str:
    res = subprocess.run(["runc", "--root", os.path.join(d.exec_root, "runtime-runc"), "state", cid],
                         capture_output=True, text=True)
    return json.loads(res.stdout)["status"] if res.returncode == 0 else "absent"


def test_unacknowledged_start_is_undone_at_restore(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout_text.strip()
    pid = d.api().inspect_container(cid)["State"]["Pid"]
    d.stop(sig=signal.SIGKILL)
    record = os.path.join(d.data_root, "containers", cid, "config.v2.json")
    with open(record) as f:
        data = json.load(f)
    data["state"].update(status="created", pid=0, started_at="0001-01-01T00:00:00Z")
    with open(record, "w") as f:
        json.dump(data, f)
    assert _runc_state(d, cid) == "running"

    d.start()
    assert _runc_state(d, cid) == "absent"
    assert not os.path.exists(f"/proc/{pid}")
    assert d.api().inspect_container(cid)["State"]["Status"] == "created"
    # and it starts cleanly from there
    d.cli("start", cid)
    assert d.api().inspect_container(cid)["State"]["Running"]
    d.cli("rm", "-f", cid)
    assert _runc_state(d, cid) == "absent"
