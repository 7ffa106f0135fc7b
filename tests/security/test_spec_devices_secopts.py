"""Issue 12 item 14: options that were accepted and ignored now work or are refused, through the real CLI.

`--device`, `--device-cgroup-rule`, `--security-opt seccomp=<profile.json>`, `systempaths=unconfined`,
`apparmor=` and `label=` (this host's AppArmor and SELinux state decides the last two).
"""

from __future__ import annotations

import json
import os
import stat

import pytest


def _apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled", encoding="ascii") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def test_device_is_created_and_usable(d) -> None:
    out = d.cli("run", "--rm", "--device", "/dev/null:/dev/mynull", "busybox", "sh", "-c",
                "ls -l /dev/mynull; echo data > /dev/mynull && echo written").stdout_text
    line, written = out.strip().split("\n")
    assert line.startswith("c") and "1,   3" in line, line
    assert written == "written"


def test_device_read_only_permission_is_enforced(d, tmp_path) -> None:
    # a node of a major without a driver, outside the default rules: an open the cgroup allows answers
    # ENXIO ("No such device or address"), one it refuses EPERM
    node = tmp_path / "dy42"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(42, 42))
    script = "(cat /dev/d42) 2>&1; (: > /dev/d42) 2>&1; true"
    out = d.cli("run", "--rm", "--device", f"{node}:/dev/d42:r", "busybox", "sh", "-c", script).stdout_text
    read, write = out.strip().split("\n")
    assert "No such device or address" in read and "Operation not permitted" in write, out
    out = d.cli("run", "--rm", "--device", f"{node}:/dev/d42:rw", "busybox", "sh", "-c", script).stdout_text
    assert "Operation not permitted" not in out, out


def test_device_missing_on_host_is_refused(d) -> None:
    res = d.cli("run", "--rm", "--device", "/dev/dy-no-such-device", "busybox", "true", check=False)
    assert res.returncode != 0
    assert 'error gathering device information while adding custom device "/dev/dy-no-such-device"' \
        in res.stderr_text


def test_device_cgroup_rule_permits_a_device(d) -> None:
    # major 42 has no driver: the device cgroup refuses the open (EPERM) unless a rule allows it, and then
    # the kernel answers ENXIO ("No such device or address")
    script = "mknod /tmp/n c 42 42 && (: > /tmp/n) 2>&1; true"
    denied = d.cli("run", "--rm", "busybox", "sh", "-c", script).stdout_text
    assert "Operation not permitted" in denied
    allowed = d.cli("run", "--rm", "--device-cgroup-rule", "c 42:* rwm", "busybox", "sh", "-c", script).stdout_text
    assert "No such device or address" in allowed and "Operation not permitted" not in allowed


def test_device_cgroup_rule_malformed_is_refused(d) -> None:
    api = d.api()
    r = api.post(api._url("/containers/create"),
                 json={"Image": "busybox", "HostConfig": {"DeviceCgroupRules": ["x 1:3 rwm"]}})
    assert r.status_code == 400 and "invalid device cgroup format 'x 1:3 rwm'" in r.json()["message"]


def test_custom_seccomp_profile_applies(d, tmp_path) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    res = d.cli("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c",
                "mkdir /tmp/x 2>&1; touch /tmp/y && echo touched", check=False)
    assert "Operation not permitted" in res.stdout_text and "touched" in res.stdout_text


def test_custom_seccomp_profile_malformed_is_refused(d, tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "mkdir", "names": ["x"], '
                    '"action": "SCMP_ACT_ERRNO"}]}')
    res = d.cli("create", "--security-opt", f"seccomp={path}", "busybox", check=False)
    assert res.returncode == 1 and "use either 'name' or 'names'" in res.stderr_text, res.stderr_text


def test_seccomp_unconfined_still_works(d) -> None:
    out = d.cli("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:",
                "/proc/self/status").stdout_text.split()
    assert out == ["Seccomp:", "0"]


def test_systempaths_unconfined_unmasks(d) -> None:
    script = "grep -c -E ' /proc/interrupts | /proc/sys ' /proc/mounts"
    masked = d.cli("run", "--rm", "busybox", "sh", "-c", script, check=False).stdout_text.strip()
    assert masked == "2"
    res = d.cli("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c", script,
                check=False)
    assert res.stdout_text.strip() == "0"


@pytest.mark.skipif(_apparmor_enabled(), reason="the host has AppArmor: profiles are applied")
def test_apparmor_without_apparmor(d) -> None:
    d.cli("run", "--rm", "--security-opt", "apparmor=unconfined", "busybox", "true")
    res = d.cli("create", "--security-opt", "apparmor=docker-default", "busybox", check=False)
    assert res.returncode == 1
    assert 'AppArmor is not enabled on this host: cannot apply profile "docker-default"' in res.stderr_text


@pytest.mark.skipif(os.path.exists("/sys/fs/selinux/enforce"), reason="the host has SELinux")
def test_label_without_selinux(d) -> None:
    d.cli("run", "--rm", "--security-opt", "label=disable", "busybox", "true")
    res = d.cli("create", "--security-opt", "label=type:svirt_apache_t", "busybox", check=False)
    assert res.returncode == 1
    assert 'SELinux is not enabled on this host: cannot apply label "type:svirt_apache_t"' in res.stderr_text


@pytest.mark.parametrize("profile", [
    "not json", "[1]", '{"syscalls": 5}', '{"defaultAction": "SCMP_ACT_NOPE"}',
    '{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [5]}',
    '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [1], "action": "SCMP_ACT_ERRNO"}]}',
    '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", '
    '"args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
    '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", '
    '"includes": {"caps": 5}}]}',
])
def test_custom_seccomp_profile_bad_shapes_are_400(d, profile) -> None:
    api = d.api()
    r = api.post(api._url("/containers/create"),
                 json={"Image": "busybox", "HostConfig": {"SecurityOpt": [f"seccomp={profile}"]}})
    assert r.status_code == 400, r.text
