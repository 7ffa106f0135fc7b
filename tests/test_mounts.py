"""Bind mounts, tmpfs, volume subpaths and the refusals, through the real docker CLI."""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    yield daemon
    ids = daemon.cli("ps", "-aq", check=False).stdout_text.split()
    if ids:
        daemon.cli("rm", "-f", *ids, check=False)
    daemon.cli("volume", "prune", "-af", check=False)


def state(d) -> tuple[list[str], list[str]]:
    return (d.cli("ps", "-aq").stdout_text.split(), d.cli("volume", "ls", "-q").stdout_text.split())


def test_bind_mount_rw_ro(d, tmp_path) -> None:
    (tmp_path / "in").write_text("from host\n")
    out = d.cli("run", "--rm", "-v", f"{tmp_path}:/h", "busybox", "sh", "-c", "cat /h/in; echo back > /h/out")
    assert out.stdout_text == "from host\n"
    assert (tmp_path / "out").read_text() == "back\n"
    res = d.cli("run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/h,readonly", "busybox",
                "touch", "/h/x", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stderr_text


def test_bind_missing_source(d, tmp_path) -> None:
    missing = tmp_path / "made" / "by-v"
    d.cli("run", "--rm", "-v", f"{missing}:/m", "busybox", "true")
    assert missing.is_dir()  # -v creates it
    gone = tmp_path / "not-there"
    res = d.cli("create", "--mount", f"type=bind,source={gone},target=/m", "busybox", check=False)
    assert res.returncode == 1
    assert f'invalid mount config for type "bind": bind source path does not exist: {gone}' in res.stderr_text
    assert not gone.exists()


def test_bind_propagation_and_nonrecursive(d, tmp_path) -> None:
    cid = d.cli("create", "--mount", f"type=bind,source={tmp_path},target=/h,bind-propagation=rslave,"
                "bind-nonrecursive", "busybox", "true").stdout_text.strip()
    mounts = json.loads(d.cli("inspect", "-f", "{{json .Mounts}}", cid).stdout_text)
    assert mounts == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/h", "Mode": "", "RW": True,
                       "Propagation": "rslave"}]
    d.cli("start", "-a", cid)
    d.cli("rm", cid)


def test_tmpfs(d) -> None:
    out = d.cli("run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", "busybox",
                "sh", "-c", "stat -c %a /t; df -k /t | tail -1").stdout_text.split("\n")
    assert out[0] == "1770" and "1024" in out[1]
    out = d.cli("run", "--rm", "--tmpfs", "/tt:size=2m", "busybox", "sh", "-c",
                "grep ' /tt ' /proc/mounts").stdout_text
    assert "tmpfs" in out and "size=2048k" in out


def test_volume_subpath(d) -> None:
    d.cli("run", "--rm", "-v", "sp:/v", "busybox", "sh", "-c", "mkdir /v/sub; echo in-sub > /v/sub/f; ln -s / /v/esc")
    out = d.cli("run", "--rm", "--mount", "type=volume,source=sp,target=/x,volume-subpath=sub", "busybox",
                "ls", "/x").stdout_text
    assert out == "f\n"
    before = state(d)
    res = d.cli("create", "--mount", "type=volume,source=sp,target=/x,volume-subpath=../a", "busybox", check=False)
    assert 'invalid mount config for type "volume": subpath must be a relative path within the volume' \
        in res.stderr_text
    res = d.cli("create", "--mount", "type=volume,source=sp,target=/x,volume-subpath=esc/etc", "busybox", check=False)
    assert res.returncode == 1 and "subpath escapes the volume: esc/etc" in res.stderr_text
    assert state(d) == before


@pytest.mark.parametrize("args,message", [
    (["-v", "rel/x:/x"], 'create rel/x: "rel/x" includes invalid characters for a local volume name'),
    (["--mount", "type=bind,source=rel,target=/x"],
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    (["-v", "/tmp:rel"], "invalid volume specification: '/tmp:rel': invalid mount config for type \"bind\": "
                         "invalid mount path: 'rel' mount path must be absolute"),
    (["-v", "/tmp:/"], "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": "
                       "invalid specification: destination can't be '/'"),
    (["--mount", "type=tmpfs,target=/"],
     "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'"),
    (["--tmpfs", "/"], "invalid specification: destination can't be '/'"),
    (["-v", "newvol:/x", "-v", "/tmp:/x"], "Duplicate mount point: /x"),
    (["-v", "newvol:/x", "--mount", "type=tmpfs,target=/x"], "Duplicate mount point: /x"),
    (["-v", "/tmp:/x", "--tmpfs", "/x"], "Duplicate mount point: /x"),
    (["-v", "/tmp:/x:bogus"], "invalid mode: bogus"),
    (["-v", "/x:rw"], "invalid volume specification: '/x:rw'"),
    (["--mount", "type=bind,source=/tmp,target=/x,bind-propagation=bogus"],
     "invalid mount config for type \"bind\": invalid propagation mode: bogus"),
    (["--mount", "type=volume,source=newvol,target=/x,volume-opt=foo=bar"], 'create newvol: invalid option: "foo"'),
    (["--mount", "type=volume,target=/x,volume-subpath=a"],
     "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes"),
])
def test_refusals_create_nothing(d, args, message) -> None:
    before = state(d)
    res = d.cli("create", *args, "busybox", check=False)
    assert res.returncode == 1 and message in res.stderr_text, res.stderr_text
    assert "Unable to find image" not in res.stderr_text  # a 400: the CLI must not try a pull
    assert state(d) == before


def test_refusal_status_is_400(d) -> None:
    api = d.api()
    import docker
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", host_config=api.create_host_config(binds=["/tmp:/"]))
    assert e.value.status_code == 400


def test_data_survives_restart_and_live_restore(fresh_daemon, busybox_tar, tmp_path) -> None:
    d = fresh_daemon
    d.config = {"live-restore": True}
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("run", "--rm", "-v", "keep:/k", "busybox", "sh", "-c", "echo 1 > /k/f")
    cid = d.cli("run", "-d", "-v", "keep:/k", "busybox", "sh", "-c",
                "while true; do sleep 0.1; [ -f /k/stop ] && break; done; cat /k/f").stdout_text.strip()
    d.restart()
    assert json.loads(d.cli("volume", "inspect", "keep").stdout_text)[0]["Name"] == "keep"
    res = d.cli("volume", "rm", "keep", check=False)
    assert f"volume is in use - [{cid}]" in res.stderr_text
    open(os.path.join(d.data_root, "volumes", "keep", "_data", "stop"), "w").close()
    assert d.cli("wait", cid).stdout_text.strip() == "0"
    assert d.cli("logs", cid).stdout_text == "1\n"
    d.cli("rm", cid)
    d.cli("volume", "rm", "keep")
