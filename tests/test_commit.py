"""docker diff, export and commit through the real docker CLI."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile



def test_diff_export_commit(d, tmp_path) -> None:
    d.cli("run", "--name", "changer", "busybox", "sh", "-c",
          "mkdir /newdir && echo hi > /newdir/f && rm /bin/true && echo x >> /etc/passwd")
    diff = d.cli("diff", "changer").stdout_text.splitlines()
    assert "A /newdir" in diff and "A /newdir/f" in diff
    assert "D /bin/true" in diff and "C /etc/passwd" in diff and "C /etc" in diff
    assert not any(line.endswith(("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/dev")) for line in diff)
    out = tmp_path / "export.tar"
    d.cli("export", "-o", str(out), "changer")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        assert "newdir/f" in names and "bin/sh" in names and "bin/true" not in names
    image_id = d.cli("commit", "-m", "made by test", "-a", "tester", "-c", "CMD [\"cat\", \"/newdir/f\"]",
                     "changer", "committed:v1").stdout_text.strip()
    info = json.loads(d.cli("image", "inspect", "committed:v1").stdout_text)[0]
    assert info["Id"] == image_id and info["Comment"] == "made by test" and info["Author"] == "tester"
    assert info["Config"]["Cmd"] == ["cat", "/newdir/f"]
    assert d.cli("run", "--rm", "committed:v1").stdout_text == "hi\n"
    assert d.cli("run", "--rm", "committed:v1", "ls", "/bin/true", check=False).returncode != 0
    # the new layer holds exactly the diff
    save = subprocess.run(["docker", "save", "committed:v1"], capture_output=True, env=d.env(), check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(save)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        top = outer.extractfile(manifest[0]["Layers"][-1]).read()
    with tarfile.open(fileobj=io.BytesIO(top)) as layer:
        names = sorted(n.rstrip("/") for n in layer.getnames())
    assert names == ["bin", "bin/.wh.true", "etc", "etc/passwd", "newdir", "newdir/f"]
    d.cli("rm", "changer")


def test_commit_running_container_pauses(d) -> None:
    d.cli("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo 1 > /state; sleep 1000")
    d.cli("exec", "live", "true")
    d.cli("commit", "live", "snap")
    assert d.cli("inspect", "-f", "{{.State.Status}}", "live").stdout_text == "running\n"
    assert d.cli("run", "--rm", "snap", "cat", "/state").stdout_text == "1\n"
    d.cli("rm", "-f", "live")
