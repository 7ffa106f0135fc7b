"""A start that fails unexpectedly ends the run: attach and wait return, --rm is honoured, the answer is clear.

The failure used is a volume whose ``_data`` directory vanished on the host
between create and start (FileNotFoundError inside the daemon).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _vanish(d, volume: str) -> None:
    shutil.rmtree(os.path.join(d.data_root, "volumes", volume, "_data"))


@pytest.mark.parametrize("rm", [True, False], ids=["rm", "attached"])
def test_start_failure_ends_run(d, rm: bool) -> None:
    vol = "faultvol-rm" if rm else "faultvol-attached"
    name = "fault-start-rm" if rm else "fault-start-attached"
    d.cli("volume", "create", vol)
    try:
        args = ["create", "--name", name, *(["--rm"] if rm else []), "-v", f"{vol}:/x", "busybox", "true"]
        d.cli(*args)
        _vanish(d, vol)
        try:
            res = d.cli("start", "-a", name, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("docker start -a hung after a failed start")
        assert res.returncode != 0
        err = res.stderr_text
        assert "Error response from daemon" in err and "_data" in err, err
        assert "Traceback" not in err and "FileNotFoundError" not in err, err
        listed = d.cli("ps", "-a", "-q", "--filter", f"name={name}").stdout_text.split()
        if rm:
            assert listed == [], "a --rm container whose start failed must be removed"
        else:
            state = d.api().inspect_container(name)["State"]
            assert state["ExitCode"] == 128 and "_data" in state["Error"], state
        # the same through `docker run`, which attaches and waits before it starts
        os.makedirs(os.path.join(d.data_root, "volumes", vol, "_data"))
        d.cli("rm", "-f", name, check=False)
        d.cli("create", "--name", name, *(["--rm"] if rm else []), "-v", f"{vol}:/x", "busybox", "true")
        d.cli("rm", "-f", name)
        _vanish(d, vol)
        run = ["run", *(["--rm"] if rm else []), "--name", name, "-v", f"{vol}:/x", "busybox", "true"]
        try:
            res = d.cli(*run, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("docker run hung after a failed start")
        assert res.returncode != 0 and "_data" in res.stderr_text, res.stderr_text
        listed = d.cli("ps", "-a", "-q", "--filter", f"name={name}").stdout_text.split()
        assert (listed == []) if rm else (len(listed) == 1)
    finally:
        d.cli("rm", "-f", name, check=False)
        os.makedirs(os.path.join(d.data_root, "volumes", vol, "_data"), exist_ok=True)
        d.cli("volume", "rm", "-f", vol, check=False)
