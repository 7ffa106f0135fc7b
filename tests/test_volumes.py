"""Volumes through the real docker CLI and docker-py: create/ls/inspect/rm/prune, use from containers."""

from __future__ import annotations

import json
import os
import time

import docker
import pytest


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    yield daemon
    ids = daemon.cli("ps", "-aq", check=False).stdout_text.split()
    if ids:
        daemon.cli("rm", "-f", *ids, check=False)
    daemon.cli("volume", "prune", "-af", check=False)


def inspect_volume(d, name: str) -> dict:
    return json.loads(d.cli("volume", "inspect", name).stdout_text)[0]


def test_create_inspect_ls_rm(d) -> None:
    assert d.cli("volume", "create", "--name", "v1", "--label", "a=b").stdout_text == "v1\n"
    info = inspect_volume(d, "v1")
    assert info["Mountpoint"] == os.path.join(d.data_root, "volumes", "v1", "_data")
    assert os.path.isdir(info["Mountpoint"])
    assert (info["Driver"], info["Labels"], info["Options"], info["Scope"]) == ("local", {"a": "b"}, None, "local")
    assert info["CreatedAt"].endswith("Z")
    # creating an existing volume again returns it
    assert d.cli("volume", "create", "v1").returncode == 0
    names = d.cli("volume", "ls", "-q", "--filter", "label=a=b").stdout_text.split()
    assert names == ["v1"]
    assert d.cli("volume", "ls", "-q", "--filter", "name=nomatch").stdout_text == ""
    assert "v1" in d.cli("volume", "ls", "-q", "--filter", "driver=local").stdout_text.split()
    d.cli("volume", "rm", "v1")
    res = d.cli("volume", "inspect", "v1", check=False)
    assert res.returncode == 1 and "get v1: no such volume" in res.stderr_text
    assert not os.path.exists(info["Mountpoint"])


def test_create_refusals(d) -> None:
    cases = [
        (("-d", "foo", "vx"), 'create vx: error looking up volume plugin foo: plugin "foo" not found'),
        (("-o", "foo=bar", "vx"), 'create vx: invalid option: "foo"'),
        (("-o", "type=tmpfs", "vx"), 'create vx: missing required option: "device"'),
        (("bad/name",), 'create bad/name: "bad/name" includes invalid characters for a local volume name'),
    ]
    for args, msg in cases:
        res = d.cli("volume", "create", *args, check=False)
        assert res.returncode == 1 and msg in res.stderr_text, res.stderr_text
    assert d.cli("volume", "ls", "-q").stdout_text.split() == []


def test_tmpfs_backed_volume(d) -> None:
    d.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=10m", "tv")
    assert inspect_volume(d, "tv")["Options"] == {"device": "tmpfs", "o": "size=10m", "type": "tmpfs"}
    out = d.cli("run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c", "echo hi > /t/f; df -k /t | tail -1").stdout_text
    assert "10240" in out
    # a tmpfs volume keeps nothing once unmounted: it was mounted for the run only
    assert not os.path.ismount(inspect_volume(d, "tv")["Mountpoint"])
    d.cli("volume", "rm", "tv")


def test_named_volume_data_survives_and_in_use(d) -> None:
    d.cli("run", "--rm", "-v", "data1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert d.cli("run", "--rm", "-v", "data1:/data:ro", "busybox", "cat", "/data/f").stdout_text == "kept\n"
    res = d.cli("run", "--rm", "-v", "data1:/data:ro", "busybox", "touch", "/data/g", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stderr_text
    cid = d.cli("create", "-v", "data1:/data", "busybox", "true").stdout_text.strip()
    res = d.cli("volume", "rm", "data1", check=False)
    assert res.returncode == 1 and f"remove data1: volume is in use - [{cid}]" in res.stderr_text
    assert d.cli("ps", "-aq", "--filter", "volume=data1", "--no-trunc").stdout_text.split() == [cid]
    assert d.cli("ps", "-aq", "--filter", "volume=/data", "--no-trunc").stdout_text.split() == [cid]
    d.cli("rm", "-v", cid)  # a named volume is not removed by rm -v
    assert d.cli("run", "--rm", "-v", "data1:/data", "busybox", "cat", "/data/f").stdout_text == "kept\n"
    d.cli("volume", "rm", "data1")


def test_inspect_mounts(d, tmp_path) -> None:
    host = tmp_path / "h"
    host.mkdir()
    cid = d.cli("create", "-v", "named:/data", "-v", "/anon", "-v", f"{host}:/h:ro,rslave",
                "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--tmpfs", "/tt", "busybox", "true").stdout_text.strip()
    mounts = json.loads(d.cli("inspect", "-f", "{{json .Mounts}}", cid).stdout_text)
    by_dest = {m["Destination"]: m for m in mounts}
    assert set(by_dest) == {"/anon", "/data", "/h", "/t"}
    anon = by_dest["/anon"]
    assert len(anon["Name"]) == 64 and anon["Mode"] == "" and anon["RW"] is True and anon["Driver"] == "local"
    assert anon["Source"] == os.path.join(d.data_root, "volumes", anon["Name"], "_data")
    assert inspect_volume(d, anon["Name"])["Labels"] == {"com.docker.volume.anonymous": ""}
    assert by_dest["/data"] == {"Type": "volume", "Name": "named", "Source": os.path.join(
        d.data_root, "volumes", "named", "_data"), "Destination": "/data", "Driver": "local", "Mode": "z",
        "RW": True, "Propagation": ""}
    assert by_dest["/h"] == {"Type": "bind", "Source": str(host), "Destination": "/h", "Mode": "ro,rslave",
                             "RW": False, "Propagation": "rslave"}
    assert by_dest["/t"] == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
                             "Propagation": ""}
    # dangling: the anonymous volume is used, so only unused ones are listed
    dangling = d.cli("volume", "ls", "-q", "--filter", "dangling=true").stdout_text.split()
    assert anon["Name"] not in dangling and "named" not in dangling
    d.cli("rm", "-v", cid)
    names = d.cli("volume", "ls", "-q").stdout_text.split()
    assert anon["Name"] not in names and "named" in names
    d.cli("volume", "rm", "named")


def test_run_rm_removes_anonymous_volumes(d) -> None:
    before = set(d.cli("volume", "ls", "-q").stdout_text.split())
    d.cli("run", "--rm", "-v", "/scratch", "busybox", "touch", "/scratch/x")
    assert set(d.cli("volume", "ls", "-q").stdout_text.split()) == before
    cid = d.cli("create", "-v", "/scratch", "busybox", "true").stdout_text.strip()
    after = set(d.cli("volume", "ls", "-q").stdout_text.split())
    assert len(after - before) == 1
    d.cli("rm", cid)  # without -v the anonymous volume stays, as in dockerd
    assert set(d.cli("volume", "ls", "-q").stdout_text.split()) == after
    d.cli("volume", "prune", "-f")
    assert set(d.cli("volume", "ls", "-q").stdout_text.split()) == before


def test_copy_up_and_nocopy(d) -> None:
    out = d.cli("run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc").stdout_text.split()
    assert "passwd" in out
    assert os.path.exists(os.path.join(d.data_root, "volumes", "etcvol", "_data", "passwd"))
    out = d.cli("run", "--rm", "-v", "etcvol2:/etc:nocopy", "busybox", "ls", "/etc").stdout_text.split()
    assert "passwd" not in out
    out = d.cli("run", "--rm", "--mount", "type=volume,source=etcvol3,target=/etc,volume-nocopy",
                "busybox", "ls", "/etc").stdout_text.split()
    assert "passwd" not in out
    # a volume that already holds something is not copied into
    d.cli("run", "--rm", "-v", "etcvol:/mnt", "busybox", "touch", "/mnt/marker")
    d.cli("run", "--rm", "-v", "etcvol:/bin", "busybox", "true", check=False)  # /bin now lacks `true`
    content = os.listdir(os.path.join(d.data_root, "volumes", "etcvol", "_data"))
    assert "marker" in content and "passwd" in content and "busybox" not in content
    d.cli("volume", "rm", "etcvol", "etcvol2", "etcvol3")


def test_volumes_from(d) -> None:
    src = d.cli("create", "--name", "vfsrc", "-v", "vfvol:/shared", "busybox", "true").stdout_text.strip()
    d.cli("run", "--rm", "-v", "vfvol:/shared", "busybox", "sh", "-c", "echo x > /shared/f")
    assert d.cli("run", "--rm", "--volumes-from", "vfsrc", "busybox", "cat", "/shared/f").stdout_text == "x\n"
    res = d.cli("run", "--rm", "--volumes-from", "vfsrc:ro", "busybox", "touch", "/shared/g", check=False)
    assert res.returncode != 0 and "Read-only" in res.stderr_text
    res = d.cli("create", "--volumes-from", "nonexist", "busybox", check=False)
    assert "No such container: nonexist" in res.stderr_text
    d.cli("rm", src)
    d.cli("volume", "rm", "vfvol")


def test_docker_py(d) -> None:
    client = d.client()
    vol = client.volumes.create("pyvol", labels={"k": "v"})
    assert vol.attrs["Labels"] == {"k": "v"}
    assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["pyvol"]
    out = client.containers.run("busybox", ["sh", "-c", "echo py > /v/f; cat /v/f"],
                                volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
    assert out == b"py\n"
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("nonexist")
    vol.remove()
    # prune: anonymous only by default, everything unused with all=true
    client.volumes.create("keepme")
    anon = client.api.create_volume(labels={"com.docker.volume.anonymous": ""})["Name"]
    res = client.api.prune_volumes()
    assert res["VolumesDeleted"] == [anon]
    res = client.api.prune_volumes(filters={"all": "true", "label": "nothere"})
    assert not res["VolumesDeleted"]
    res = client.api.prune_volumes(filters={"all": "true"})
    assert "keepme" in res["VolumesDeleted"]


def test_system_df_volume_sizes(d) -> None:
    d.cli("run", "--rm", "-v", "dfvol:/d", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /d/f")
    usage = d.api().df()
    vols = {v["Name"]: v for v in usage["Volumes"]}
    assert vols["dfvol"]["UsageData"] == {"Size": 100000, "RefCount": 0}
    out = d.cli("system", "df", "-v", "--format", "{{json .Volumes}}").stdout_text
    assert any(v["Name"] == "dfvol" and v["Size"] == "100kB" for v in json.loads(out))
    d.cli("volume", "rm", "dfvol")


def test_events(d) -> None:
    since = str(int(time.time()) - 1)
    d.cli("run", "--rm", "-v", "evvol:/e", "busybox", "true")
    d.cli("volume", "rm", "evvol")
    until = str(int(time.time()) + 1)
    out = d.cli("events", "--since", since, "--until", until, "--filter", "type=volume",
                "--filter", "volume=evvol", "--format", "{{.Action}} {{.Actor.ID}}").stdout_text.splitlines()
    assert out == ["create evvol", "mount evvol", "unmount evvol", "destroy evvol"]
