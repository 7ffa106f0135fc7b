"""Issue 12 item 5: a cpuset list is checked against dockerd's bound before anything is allocated.

`0-999999999` once made the daemon build a billion-element set (OOM-killed at 24 GB). The answers
must be dockerd's 400s, and quick: the short timeouts below are the cheap bound on the work done.
"""

from __future__ import annotations

import pytest

HUGE = "0-999999999"


@pytest.mark.parametrize("flag,what", [("--cpuset-cpus", "cpus"), ("--cpuset-mems", "mems")])
def test_run_refuses_a_huge_cpuset(d, flag, what) -> None:
    res = d.cli("run", "--rm", flag, HUGE, "busybox", "true", check=False, timeout=20)
    assert res.returncode == 125
    assert f"Invalid value {HUGE} for cpuset {what}: value of out range, maximum is 8192" in res.stderr_text


def test_update_refuses_a_huge_cpuset(d) -> None:
    cid = d.cli("create", "busybox", "true").stdout_text.strip()
    try:
        api = d.api()
        for key, what in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
            r = api.post(api._url(f"/containers/{cid}/update"), json={key: HUGE}, timeout=20)
            assert r.status_code == 400, r.text
            assert f"Invalid value {HUGE} for cpuset {what}" in r.json()["message"]
        res = d.cli("update", "--cpuset-cpus", HUGE, cid, check=False, timeout=20)
        assert res.returncode == 1 and "value of out range, maximum is 8192" in res.stderr_text
        # many ranges, each within the bound: still one small mask, refused as unavailable
        many = ",".join(["0-8192"] * 20000)
        r = api.post(api._url(f"/containers/{cid}/update"), json={"CpusetCpus": many}, timeout=20)
        assert r.status_code == 400 and "Requested CPUs are not available" in r.json()["message"]
    finally:
        d.cli("rm", "-f", cid)


@pytest.mark.parametrize("value,message", [
    ("1-0", "Invalid value 1-0 for cpuset cpus: invalid format: 1-0"),
    ("x", "Invalid value x for cpuset cpus: invalid format: x"),
    ("8192", "Requested CPUs are not available - requested 8192, available: "),
])
def test_run_cpuset_wording(d, value, message) -> None:
    res = d.cli("create", "--cpuset-cpus", value, "busybox", check=False, timeout=20)
    assert res.returncode == 1 and message in res.stderr_text, res.stderr_text


def test_run_cpuset_within_bounds_works(d) -> None:
    out = d.cli("run", "--rm", "--cpuset-cpus", "0", "busybox", "grep", "Cpus_allowed_list", "/proc/self/status"
                ).stdout_text.split()
    assert out == ["Cpus_allowed_list:", "0"]
