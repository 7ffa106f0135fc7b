"""The dockyard CLI against dockyardd, compared with what the real docker CLI prints for the same command."""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import DOCKER


DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def dockyard(daemon, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    e = daemon.env() if env is None else env
    res = subprocess.run([DOCKYARD, *args], input=input, capture_output=True, env=e, timeout=timeout)
    res.stdout_text = res.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    res.stderr_text = res.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    return res


def both(daemon, *args: str, input: bytes | None = None) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    return daemon.cli(*args, input=input, check=False), dockyard(daemon, *args, input=input)


def rows(text: str, header: bool = True) -> tuple[str, list[str]]:
    """docker orders an image's repositories by Go map iteration: compare rows as a set, header apart."""
    lines = text.splitlines()
    if header and lines:
        return lines[0], sorted(lines[1:])
    return "", sorted(lines)


def assert_same(daemon, *args: str, header: bool = True, exit_code: int = 0) -> str:
    ref, ours = both(daemon, *args)
    assert ref.returncode == exit_code, ref.stderr_text
    assert ours.returncode == ref.returncode, (ours.stderr_text, ref.stderr_text)
    assert rows(ours.stdout_text, header) == rows(ref.stdout_text, header), \
        f"docker:\n{ref.stdout_text}\ndockyard:\n{ours.stdout_text}"
    return ours.stdout_text


@pytest.fixture(scope="module")
def loaded(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("tag", "busybox:latest", "example.com/team/tool:1.0")
    daemon.cli("tag", "busybox:latest", "busybox:second")
    return busybox_tar


def test_images_tables_match_docker(daemon, loaded):
    for args in (["images"], ["image", "ls"], ["images", "-a"], ["images", "--digests"], ["images", "--no-trunc"],
                 ["images", "busybox"], ["images", "-f", "reference=busybox:second"], ["images", "-f", "dangling=false"],
                 ["images", "-f", "label=nope"]):
        out = assert_same(daemon, *args)
        assert out.splitlines()[0].startswith("REPOSITORY")


def test_images_quiet_and_formats_match_docker(daemon, loaded):
    assert loaded.image_id[7:19] in assert_same(daemon, "images", "-q", header=False)
    assert_same(daemon, "images", "-q", "--no-trunc", header=False)
    assert_same(daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Digest}}", header=False)
    assert_same(daemon, "images", "--format", "json", header=False)
    assert_same(daemon, "images", "--format", "{{json .}}", header=False)
    assert_same(daemon, "images", "--format", "table {{.ID}}\t{{json .Repository}}\t{{lower .Tag}}|{{.VirtualSize}}")
    assert_same(daemon, "images", "--format", "table {{.Repository}}\t{{.Tag}}", "--digests")
    assert_same(daemon, "images", "--format", "{{.CreatedAt}} {{.Containers}} {{.SharedSize}} {{.UniqueSize}}",
                header=False)


def test_format_errors_match_docker(daemon, loaded):
    for fmt in ("{{.Nope}}", "{{nofunc .ID}}", "{{if .ID}}"):
        ref, ours = both(daemon, "images", "--format", fmt)
        assert ref.returncode != 0
        assert ours.returncode == ref.returncode
        assert ours.stderr_text.startswith("template parsing error: template: :1")
        assert ref.stderr_text.split(":", 1)[0] == ours.stderr_text.split(":", 1)[0]


def test_inspect_matches_docker(daemon, loaded):
    ref, ours = both(daemon, "image", "inspect", "busybox")
    assert ours.returncode == 0
    assert json.loads(ours.stdout_text) == json.loads(ref.stdout_text)
    assert ours.stdout_text.startswith("[\n    {\n")
    assert_same(daemon, "inspect", "busybox", header=False)
    assert_same(daemon, "image", "inspect", "--format", "{{.Id}} {{.Config.Cmd}} {{json .RootFS}} {{.Os}}/{{.Architecture}}",
                "busybox", "busybox:second", header=False)
    assert_same(daemon, "inspect", "-f", '{{range .RepoTags}}{{.}},{{end}} {{index .Config.Env 0}} {{len .RootFS.Layers}}'
                ' {{if .Parent}}p{{else}}none{{end}} {{join .Config.Cmd "+"}} {{upper .Os}}', "busybox", header=False)
    assert_same(daemon, "image", "inspect", "--format", "json", "busybox", header=False)
    # nulls print as docker's typed structs print them: nil slices [], nil maps map[], JSON null
    assert_same(daemon, "image", "inspect", "--format", "{{.Config.Entrypoint}} {{.Config.Labels}} "
                "{{json .Config.Entrypoint}} {{len .Config.Entrypoint}} {{range .Config.Entrypoint}}x{{end}}",
                "busybox", header=False)


def test_inspect_missing_matches_docker(daemon, loaded):
    ref, ours = both(daemon, "image", "inspect", "busybox", "no-such-image")
    assert ref.returncode == ours.returncode == 1
    assert ours.stderr_text == ref.stderr_text
    assert json.loads(ours.stdout_text) == json.loads(ref.stdout_text)
    ref, ours = both(daemon, "inspect", "--format", "{{.Id}}", "no-such-thing")
    assert (ours.returncode, ours.stdout_text, ours.stderr_text) == (1, "", "Error: No such object: no-such-thing\n")
    assert ref.stderr_text == ours.stderr_text


def test_history_matches_docker(daemon, loaded):
    for args in (["history", "busybox"], ["history", "--no-trunc", "busybox"], ["image", "history", "-H=false", "busybox"],
                 ["history", "--human=false", "--no-trunc", "busybox"]):
        assert_same(daemon, *args)
    assert_same(daemon, "history", "-q", "busybox", header=False)
    assert_same(daemon, "history", "--format", "json", "busybox", header=False)
    assert_same(daemon, "history", "--format", "table {{.ID}}\t{{.CreatedAt}}\t{{.Size}}", "busybox")


def test_system_df_matches_docker(daemon, loaded):
    assert_same(daemon, "system", "df")
    assert_same(daemon, "system", "df", "--format", "json", header=False)
    assert_same(daemon, "system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Reclaimable}}", header=False)
    ref, ours = both(daemon, "system", "df", "-v")
    assert ours.returncode == ref.returncode == 0
    assert ours.stdout_text == ref.stdout_text


def test_tag_and_rmi(daemon, loaded):
    res = dockyard(daemon, "tag", "busybox", "mine/tagged:v1")
    assert res.returncode == 0, res.stderr_text
    assert "mine/tagged:v1" in daemon.cli("image", "inspect", "--format", "{{.RepoTags}}", "busybox").stdout_text
    res = dockyard(daemon, "rmi", "mine/tagged:v1", "no-such-image")
    assert res.returncode == 1
    assert res.stdout_text == "Untagged: mine/tagged:v1\n"
    ref = daemon.cli("rmi", "no-such-image", check=False)
    assert res.stderr_text == ref.stderr_text
    ref, ours = both(daemon, "tag", "busybox", "Bad:Name")
    assert ours.returncode == ref.returncode == 1
    assert ours.stderr_text == ref.stderr_text


def test_usage_errors(daemon):
    res = dockyard(daemon, "images", "--bogus")
    assert res.returncode == 125
    assert res.stderr_text.startswith("unknown flag: --bogus\n\nUsage:  dockyard images [OPTIONS] [REPOSITORY[:TAG]]")
    res = dockyard(daemon, "images", "--dig")  # no abbreviations, as in cobra
    assert res.returncode == 125 and res.stderr_text.startswith("unknown flag: --dig\n")
    res = dockyard(daemon, "nosuch")
    assert res.returncode == 1
    assert res.stderr_text == "dockyard: unknown command: dockyard nosuch\n\nRun 'dockyard --help' for more information\n"
    res = dockyard(daemon, "tag", "one")
    assert res.returncode == 1
    assert "'dockyard tag' requires 2 arguments" in res.stderr_text
    res = dockyard(daemon, "images", "-f", "dangling")
    assert res.returncode == 125
    assert 'invalid argument "dangling" for "-f, --filter" flag' in res.stderr_text


def test_daemon_errors(daemon, loaded):
    ref, ours = both(daemon, "images", "-f", "bogus=1")
    assert ours.returncode == ref.returncode == 1
    assert ours.stderr_text.startswith("Error response from daemon: ")
    assert ours.stderr_text == ref.stderr_text


def test_save_load_roundtrip(daemon, loaded, tmp_path):
    out = tmp_path / "two.tar"
    res = dockyard(daemon, "save", "-o", str(out), "busybox", "busybox:second")
    assert res.returncode == 0, res.stderr_text
    with tarfile.open(out) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(t for m in manifest for t in m["RepoTags"]) == ["busybox:latest", "busybox:second"]
    res = dockyard(daemon, "save", "busybox")  # stdout is a pipe here: allowed
    assert res.returncode == 0 and res.stdout[:512] and tarfile.is_tarfile(_write(tmp_path / "s.tar", res.stdout))
    daemon.cli("tag", "busybox", "reload/me:1")
    daemon.cli("save", "-o", str(tmp_path / "one.tar"), "reload/me:1")
    daemon.cli("rmi", "reload/me:1")
    res = dockyard(daemon, "load", "-i", str(tmp_path / "one.tar"))
    assert res.returncode == 0, res.stderr_text
    assert res.stdout_text == "Loaded image: reload/me:1\n"
    daemon.cli("rmi", "reload/me:1")
    res = dockyard(daemon, "load", "-q", input=(tmp_path / "one.tar").read_bytes())
    assert res.returncode == 0, res.stderr_text
    assert "reload/me:1" in res.stdout_text
    res = dockyard(daemon, "load", input=b"this is not a tar archive" * 100)
    assert res.returncode == 1 and res.stderr_text.strip()
    res = dockyard(daemon, "save", "-o", str(tmp_path / "nodir" / "x.tar"), "busybox")
    assert res.returncode == 1 and "does not exist" in res.stderr_text


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_import_with_changes_and_message(daemon, loaded, tmp_path):
    tar = tmp_path / "fs.tar"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("hello.txt")
        data = b"hello\n"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    res = dockyard(daemon, "import", "-c", "ENV A=b", "--change", "CMD [\"/hello\"]", "-m", "from a file",
                   str(tar), "imported/file:1")
    assert res.returncode == 0, res.stderr_text
    image_id = res.stdout_text.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    cfg = daemon.client().images.get("imported/file:1").attrs
    assert cfg["Id"] == image_id
    assert "A=b" in cfg["Config"]["Env"] and cfg["Config"]["Cmd"] == ["/hello"]
    assert cfg["Comment"] == "from a file"
    res = dockyard(daemon, "import", "-", "imported/stdin", input=tar.read_bytes())
    assert res.returncode == 0, res.stderr_text
    assert daemon.client().images.get("imported/stdin:latest").id == res.stdout_text.strip()


def test_prune(daemon, loaded, tmp_path):
    res = dockyard(daemon, "image", "prune", input=b"n\n")
    assert res.returncode == 0
    assert res.stdout_text == ("WARNING! This will remove all dangling images.\n"
                               "Are you sure you want to continue? [y/N] ")
    res = dockyard(daemon, "image", "prune", "-f")
    assert res.returncode == 0
    assert res.stdout_text.endswith("Total reclaimed space: 0B\n") or "Deleted Images:" in res.stdout_text
    daemon.cli("tag", "busybox", "prune/me:1")
    daemon.cli("save", "-o", str(tmp_path / "p.tar"), "prune/me:1")
    daemon.cli("rmi", "prune/me:1")


def test_version_and_info(daemon):
    res = dockyard(daemon, "version")
    assert res.returncode == 0, res.stderr_text
    ref = daemon.cli("version").stdout_text
    ours_server = res.stdout_text.split("\nServer:", 1)[1]
    assert ours_server == ref.split("\nServer:", 1)[1]
    assert res.stdout_text.startswith("Client:\n Version:           ")
    assert_same(daemon, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}", header=False)
    ref, ours = both(daemon, "info")
    assert ours.returncode == 0
    assert ours.stdout_text.split("\nServer:", 1)[1] == ref.stdout_text.split("\nServer:", 1)[1]
    assert_same(daemon, "info", "--format", "{{.Driver}} {{.DockerRootDir}} {{json .Plugins}}", header=False)


def test_events_since_until(daemon, loaded):
    daemon.cli("tag", "busybox", "events/seen:1")
    time.sleep(1.1)
    for args in (["events", "--since", "5m", "--until", "0s"],
                 ["events", "--since", "5m", "--until", "0s", "-f", "type=image", "-f", "event=tag"],
                 ["events", "--since", "5m", "--until", "0s", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} "
                  "{{.Actor.Attributes.name}} {{.Status}}"],
                 ["events", "--since", "5m", "--until", "0s", "--format", "json"]):
        out = assert_same(daemon, *args, header=False)
        assert "events/seen:1" in out


def test_events_streams_live(daemon, loaded):
    proc = subprocess.Popen([DOCKYARD, "events", "--filter", "event=tag", "--format",
                             "{{.Action}} {{.Actor.Attributes.name}}"], stdout=subprocess.PIPE, env=daemon.env())
    try:
        # tag until the stream shows one: no guessing how long the CLI takes to subscribe
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline:
            n += 1
            daemon.cli("tag", "busybox", f"live/event:{n}")
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                break
        line = proc.stdout.readline().decode()  # type: ignore[union-attr]
        assert re.fullmatch(r"tag live/event:\d+\n", line), line
        assert proc.poll() is None  # still streaming
    finally:
        proc.terminate()
        proc.wait(10)


def test_host_flag_env_and_default(daemon, tmp_path):
    env = {k: v for k, v in daemon.env().items() if k != "DOCKER_HOST"}
    res = dockyard(daemon, "-H", daemon.host, "version", "--format", "{{.Server.Os}}", env=env)
    assert (res.returncode, res.stdout_text) == (0, "linux\n"), res.stderr_text
    res = dockyard(daemon, "version", "--format", "{{.Server.Os}}")
    assert (res.returncode, res.stdout_text) == (0, "linux\n"), res.stderr_text
    # without -H or DOCKER_HOST the CLI goes to dockyardd's default socket, not docker's
    res = dockyard(daemon, "images", env=env)
    if not os.path.exists("/run/dockyard.sock"):
        assert res.returncode == 1
        assert res.stderr_text == ("Cannot connect to the Docker daemon at unix:///run/dockyard.sock. "
                                   "Is the docker daemon running?\n")
    res = dockyard(daemon, "-H", f"unix://{tmp_path}/none.sock", "version", env=env)
    assert res.returncode == 1
    assert res.stdout_text.startswith("Client:\n")
    assert f"unix://{tmp_path}/none.sock" in res.stderr_text


def test_images_format_from_config_file(daemon, loaded, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"imagesFormat": "{{.Repository}}!{{.Tag}}"}))
    env = {**daemon.env(), "DOCKER_CONFIG": str(cfg)}
    ref = subprocess.run([DOCKER, "images"], capture_output=True, env=env, text=True)
    ours = dockyard(daemon, "images", env=env)
    assert ours.returncode == ref.returncode == 0
    assert sorted(ours.stdout_text.splitlines()) == sorted(ref.stdout.splitlines())
    assert "busybox!latest" in ours.stdout_text
    # -q wins over the configured format, as in docker
    assert loaded.image_id[7:19] in dockyard(daemon, "images", "-q", env=env).stdout_text.splitlines()


def test_save_and_load_refuse_a_terminal(daemon, loaded):
    """Like docker: no tar onto a terminal, and no load from one."""
    import pty
    for args, message in ((["save", "busybox"], "cowardly refusing to save to a terminal"),
                          (["load"], "requested load from stdin, but stdin is empty")):
        master, slave = pty.openpty()
        try:
            proc = subprocess.run([DOCKYARD, *args], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                                  env=daemon.env(), timeout=60)
        finally:
            os.close(slave)
            os.close(master)
        assert proc.returncode == 1
        assert message in proc.stderr.decode()
