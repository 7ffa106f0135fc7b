"""docker cp / the archive endpoints of a container that does not run, side by side with the reference
dockerd (issue 15): its volumes and binds are seen and written as dockerd mounts them for the copy,
and the path rules (missing parent, file onto directory and the reverse, copyUIDGID) answer alike."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def _tar(*entries: tuple[str, str]) -> bytes:
    """(name, "dir" | "->target" | content) entries, owned by 1234:4321 as a client's archive may be."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.mtime = 1234, 4321, 1_700_000_000
            if content == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif content.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content.encode()))
    return buf.getvalue()


def _get(api, cid: str, path: str) -> object:
    status, got = outcome(lambda: api.get_archive(cid, path))
    if status != 200:
        return status, got
    stream, stat = got
    members = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    files = {}
    for m in members.getmembers():
        data = members.extractfile(m).read().decode() if m.isreg() else None
        files[m.name] = (m.type, m.uid, m.gid, data)
    return stat["name"], stat["size"] if not stat["mode"] & (1 << 31) else "dir", files


def _head(api, cid: str, path: str) -> tuple[int, dict | None]:
    res = api.head(api._url("/containers/{0}/archive", cid), params={"path": path})
    stat = res.headers.get("X-Docker-Container-Path-Stat")
    if not stat:
        return res.status_code, None
    import base64
    decoded = json.loads(base64.b64decode(stat))
    return res.status_code, {k: decoded[k] for k in ("name", "size", "linkTarget")}


def _put(api, cid: str, path: str, data: bytes, **flags: bool) -> tuple[int, str]:
    res = api.put(api._url("/containers/{0}/archive", cid), data=data,
                  params={"path": path, **{k: "true" for k, v in flags.items() if v}})
    return res.status_code, res.json()["message"] if res.content else ""


def _same_status(ours: int, ref: int) -> bool:
    # dockerd 20.10 answers a refused copy (read-only mount, a directory onto a file) with a 500; a
    # client's bad request is a 4xx here, with dockerd's words
    return ours == ref or (ref == 500 and 400 <= ours < 500)


def test_stopped_container_copies_see_volumes_and_binds(engines, tmp_path) -> None:
    bound = tmp_path / "bound"
    bound.mkdir()
    (bound / "b.txt").write_text("bound\n")
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        cleanup(e, "cpvol")
        e.cli("volume", "rm", "-f", "cpvol-data", check=False)
        c = api.create_container(
            "busybox", ["sh", "-c", "echo invol > /vol1/f; mkdir /vol1/d"], name="cpvol",
            host_config=api.create_host_config(binds={"cpvol-data": {"bind": "/vol1", "mode": "rw"},
                                                      str(bound): {"bind": "/bnd", "mode": "ro"}}))
        cid = c["Id"]
        try:
            api.start(cid)
            assert api.wait(cid)["StatusCode"] == 0
            rows = [_get(api, cid, "/vol1/f"), _get(api, cid, "/bnd/b.txt"), _head(api, cid, "/vol1/d"),
                    _head(api, cid, "/bnd"), _head(api, cid, "/vol1/none")]
            rows.append(_put(api, cid, "/vol1/d", _tar(("up.txt", "payload"))))
            rows.append(_put(api, cid, "/bnd", _tar(("up.txt", "payload"))))
            rows.append(_get(api, cid, "/vol1"))
            # the copy went into the volume itself, as another container sees it
            rows.append(e.cli("run", "--rm", "-v", "cpvol-data:/v", "busybox", "cat", "/v/d/up.txt").stdout_text)
            seen[which] = rows
            if which == "dockyard":  # the copy's mounts lived in its own namespace: none is left on the host
                with open("/proc/self/mountinfo") as f:
                    assert not [line for line in f if str(bound) in line or cid in line]
        finally:
            cleanup(e, "cpvol")
            e.cli("volume", "rm", "-f", "cpvol-data", check=False)
    ours, ref = seen["dockyard"], seen["dockerd"]
    assert ours[:6] == ref[:6]
    assert _same_status(ours[6][0], ref[6][0]) and ours[6][1] == ref[6][1] == "mounted volume is marked read-only"
    assert ours[7:] == ref[7:]
    assert ref[0][2]["f"][3] == "invol\n" and ref[8] == "payload"
    assert not (bound / "up.txt").exists()


def test_archive_path_rules_match_dockerd(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        cleanup(e, "cprules")
        c = api.create_container("busybox", "true", name="cprules", user="nobody", volumes=["/vol1"])
        cid = c["Id"]
        try:
            assert _put(api, cid, "/vol1", _tar(("d", "dir"), ("f", "x"))) == (200, "")
            assert _put(api, cid, "/", _tar(("plain", "x"))) == (200, "")
            rows = [
                _put(api, cid, "/vol1/missing/deeper", _tar(("a", "x"))),
                _put(api, cid, "/vol1", _tar(("f", "dir")), noOverwriteDirNonDir=True),
                _put(api, cid, "/vol1", _tar(("d", "x")), noOverwriteDirNonDir=True),
                _put(api, cid, "/plain", _tar(("a", "x"))),
                _put(api, cid, "/vol1", _tar(("own", "x")), copyUIDGID=True),
                _put(api, cid, "/vol1", _tar(("kept", "x"))),
                _put(api, cid, "/vol1", _tar(("d", "x"))),  # without the flag the file replaces the directory
                _get(api, cid, "/vol1"),
            ]
            seen[which] = rows
        finally:
            cleanup(e, "cprules")
    ours, ref = seen["dockyard"], seen["dockerd"]
    for i, (a, b) in enumerate(zip(ours, ref)):
        if isinstance(b, tuple) and len(b) == 2 and isinstance(b[0], int):
            # dockerd's extraction runs in a re-executed child whose failure it prefixes ("Error processing
            # tar file(exit status 1): ...")
            assert _same_status(a[0], b[0]), i
            assert b[1].replace(cid_hint(b[1]), "").endswith(a[1].replace(cid_hint(a[1]), "")), i
            continue
        assert a == b, i
    assert ref[0][0] == 404 and ref[3][1] == "extraction point is not a directory"
    assert "cannot overwrite non-directory \"/vol1/f\" with directory \"/vol1\"" in ref[1][1]


def cid_hint(message: str) -> str:
    """The container ID a "Could not find the file" message ends with (each engine has its own)."""
    return message.rsplit(" ", 1)[-1] if message.startswith("Could not find the file") else "\0"


def test_mount_point_swapped_for_a_link_stays_in_the_container(d, tmp_path) -> None:
    """A stopped container that made its volume's mount point a link to a host path: the copy's mount
    lands where the link leads inside the container's root, never on the host's directory."""
    escape = tmp_path / "host-side"
    api = api_of(d)
    cleanup(d, "cplink")
    c = api.create_container("busybox", "true", name="cplink", volumes=["/vol1"])
    try:
        assert _put(api, c["Id"], "/", _tar(("vol1", f"->../../..{escape}"))) == (200, "")
        assert _put(api, c["Id"], "/vol1", _tar(("in-volume", "x"))) == (200, "")
        assert not escape.exists()
        # the volume was mounted at the link's target inside the root, and took the file
        volume = api.inspect_container(c)["Mounts"][0]["Name"]
        assert d.cli("run", "--rm", "-v", f"{volume}:/v", "busybox", "ls", "/v").stdout_text == "in-volume\n"
    finally:
        cleanup(d, "cplink")
