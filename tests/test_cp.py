"""docker cp through the real docker CLI: both ways, running and stopped, symlinks kept inside the root."""

from __future__ import annotations

import io
import os
import tarfile

import pytest


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("run", "-d", "--name", "cpbox", "busybox", "sleep", "1000")
    yield daemon
    ids = daemon.cli("ps", "-aq", check=False).stdout_text.split()
    if ids:
        daemon.cli("rm", "-f", *ids, check=False)


def test_cp_file_and_dir_both_ways(d, tmp_path) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    d.cli("cp", str(src), "cpbox:/tmp/")
    out = d.cli("exec", "cpbox", "sh", "-c", "cat /tmp/tree/a.txt /tmp/tree/sub/b.txt; stat -c %u /tmp/tree/a.txt")
    assert out.stdout_text == "alphabeta0\n"
    back = tmp_path / "back"
    back.mkdir()
    d.cli("cp", "cpbox:/tmp/tree", str(back))
    assert (back / "tree" / "sub" / "b.txt").read_text() == "beta"
    d.cli("cp", "cpbox:/tmp/tree/a.txt", str(back / "copy.txt"))
    assert (back / "copy.txt").read_text() == "alpha"


def test_cp_archive_keeps_ownership_of_container_user(d, tmp_path) -> None:
    d.cli("run", "-d", "--name", "userbox", "-u", "nobody", "busybox", "sleep", "1000")
    f = tmp_path / "f.txt"
    f.write_text("x")
    d.cli("cp", "-a", str(f), "userbox:/tmp/")
    assert d.cli("exec", "userbox", "stat", "-c", "%u:%g", "/tmp/f.txt").stdout_text == "65534:65534\n"
    d.cli("rm", "-f", "userbox")


def test_cp_stopped_container(d, tmp_path) -> None:
    d.cli("create", "--name", "stopped", "busybox", "true")
    f = tmp_path / "in.txt"
    f.write_text("while stopped")
    d.cli("cp", str(f), "stopped:/in.txt")
    d.cli("cp", "stopped:/in.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "while stopped"
    d.cli("rm", "stopped")


def test_cp_errors(d, tmp_path) -> None:
    f = tmp_path / "x"
    f.write_text("x")
    res = d.cli("cp", str(f), "cpbox:/nonexistent/dir/x", check=False)
    assert res.returncode != 0 and "Could not find the file /nonexistent/dir in container cpbox" in res.stderr_text
    res = d.cli("cp", "cpbox:/nope", str(tmp_path), check=False)
    assert res.returncode != 0 and "Could not find the file /nope in container cpbox" in res.stderr_text
    api = d.api()
    with pytest.raises(Exception) as err:
        api.put_archive("cpbox", "/tmp", b"this is not a tar archive" * 40)
    assert getattr(err.value, "status_code", None) == 400


def test_symlinks_never_reach_the_host(d, tmp_path) -> None:
    marker = tmp_path / "host-secret"
    marker.write_text("host")
    d.cli("exec", "cpbox", "sh", "-c",
          f"ln -s /etc /tmp/etclink; ln -s ../../../../../../../.. /tmp/up; ln -s {tmp_path} /tmp/hostdir")
    api = d.api()
    # reading through a link to /etc gives the container's /etc
    stream, stat = api.get_archive("cpbox", "/tmp/etclink/passwd")
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        content = tar.extractfile(tar.getmembers()[0]).read()
    assert content == d.cli("exec", "cpbox", "cat", "/etc/passwd").stdout
    # a climbing link stays at the container's root
    res = d.cli("cp", f"cpbox:/tmp/up{tmp_path}/host-secret", str(tmp_path / "stolen"), check=False)
    assert res.returncode != 0 and not (tmp_path / "stolen").exists()
    res = d.cli("cp", "cpbox:/tmp/hostdir/host-secret", str(tmp_path / "stolen"), check=False)
    assert res.returncode != 0 and not (tmp_path / "stolen").exists()
    # writing through the links lands inside the container
    src = tmp_path / "planted"
    src.write_text("planted")
    d.cli("cp", str(src), "cpbox:/tmp/up/")
    d.cli("cp", str(src), "cpbox:/tmp/hostdir/", check=False)
    assert sorted(os.listdir(tmp_path)) == ["host-secret", "planted"]
    assert d.cli("exec", "cpbox", "cat", "/planted").stdout_text == "planted"
    # the link itself is copied as a link, with its target resolved in the container
    assert stat_of(api, "/tmp/etclink")["linkTarget"] == "/etc"


def stat_of(api, path):
    return api.get_archive("cpbox", path)[1]


def test_cp_never_replaces_a_directory_with_a_file(d, tmp_path) -> None:
    # the CLI sends noOverwriteDirNonDir: a file must not replace a directory, nor a directory a file
    d.cli("run", "-d", "--name", "nooverwrite", "busybox", "sleep", "300")
    d.cli("exec", "nooverwrite", "sh", "-c", "mkdir -p /tmp/adir && touch /tmp/adir/keep /tmp/afile")
    src = tmp_path / "src"
    src.mkdir()
    (src / "adir").write_text("file\n")
    res = d.cli("cp", f"{src}/.", "nooverwrite:/tmp", check=False)
    assert res.returncode != 0 and "cannot overwrite directory" in res.stderr_text
    (src / "adir").unlink()
    (src / "afile").mkdir()
    res = d.cli("cp", f"{src}/.", "nooverwrite:/tmp", check=False)
    assert res.returncode != 0 and "cannot overwrite non-directory" in res.stderr_text
    assert d.cli("exec", "nooverwrite", "sh", "-c", "test -d /tmp/adir && test -f /tmp/afile && echo ok"
                 ).stdout_text == "ok\n"


def test_cp_sees_volumes_and_bind_mounts_of_a_running_container(d, tmp_path) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "from-host.txt").write_text("bound")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    d.cli("run", "-d", "--name", "mnt", "-v", "cpvol:/vol", "-v", f"{bind}:/bind", "busybox", "sh", "-c",
          "echo in-volume > /vol/v.txt; ln -s / /vol/up; ln -s ../../.. /vol/dots; sleep 1000")
    d.cli("exec", "mnt", "sh", "-c", "until [ -L /vol/dots ]; do sleep 0.05; done")
    out = tmp_path / "out"
    out.mkdir()
    d.cli("cp", "mnt:/vol/v.txt", str(out / "v.txt"))
    assert (out / "v.txt").read_text() == "in-volume\n"
    d.cli("cp", "mnt:/bind/from-host.txt", str(out / "b.txt"))
    assert (out / "b.txt").read_text() == "bound"
    f = tmp_path / "up.txt"
    f.write_text("uploaded")
    d.cli("cp", str(f), "mnt:/vol/")
    d.cli("cp", str(f), "mnt:/bind/")
    assert d.cli("exec", "mnt", "cat", "/vol/up.txt").stdout_text == "uploaded"
    assert (bind / "up.txt").read_text() == "uploaded"
    # links inside a volume still resolve inside the container, never to the host
    d.cli("cp", "mnt:/vol/up/etc/hostname", str(out / "h1"))
    d.cli("cp", "mnt:/vol/dots/etc/hostname", str(out / "h2"))
    container_hostname = d.cli("exec", "mnt", "cat", "/etc/hostname").stdout_text
    assert (out / "h1").read_text() == (out / "h2").read_text() == container_hostname
    assert d.cli("cp", f"mnt:/vol/dots{secret}", str(out / "s"), check=False).returncode != 0
    d.cli("cp", str(f), "mnt:/vol/dots/tmp/escaped.txt")
    assert not os.path.exists("/tmp/escaped.txt")
    assert d.cli("exec", "mnt", "cat", "/tmp/escaped.txt").stdout_text == "uploaded"
    d.cli("rm", "-f", "-v", "mnt")
    d.cli("volume", "rm", "cpvol")
