"""dockyard's volume commands side by side with the real docker CLI against one dockyardd."""

from __future__ import annotations

import json

import pytest
from test_cli import both, dockyard
from test_cli_containers import same


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    yield daemon
    daemon.cli("rm", "-f", "vuser", check=False)
    names = daemon.cli("volume", "ls", "-q", check=False).stdout_text.split()
    if names:
        daemon.cli("volume", "rm", "-f", *names, check=False)


def test_create_ls_inspect_match_docker(d) -> None:
    assert dockyard(d, "volume", "create", "--label", "team=a", "-o", "type=tmpfs", "-o", "device=tmpfs",
                    "v10").stdout_text == "v10\n"
    assert dockyard(d, "volume", "create", "--name", "v2", "--label", "team=b").stdout_text == "v2\n"
    anon = dockyard(d, "volume", "create")
    assert anon.returncode == 0 and len(anon.stdout_text.strip()) == 64
    for args in (["volume", "ls"], ["volume", "ls", "-q"], ["volume", "list", "--format", "json"],
                 ["volume", "ls", "--format", "table {{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.Labels}}\t{{.Mountpoint}}"],
                 ["volume", "ls", "--format", '{{.Name}} {{.Label "team"}} {{.Links}} {{.Size}}'],
                 ["volume", "ls", "--format", 'table {{.Name}}\t{{.Label "team"}}'],
                 ["volume", "ls", "-f", "label=team=b", "-q"], ["volume", "ls", "-f", "name=v1", "-q"],
                 ["volume", "ls", "-f", "dangling=true", "-q"], ["volume", "ls", "-f", "driver=local", "-q"],
                 ["volume", "ls", "--format", "table {{.Name}}\t{{.Group}}\t{{.Availability}}\t{{.Status}}"], ["volume", "inspect", "-f", "{{.Name}} {{.Options}}", "v10", "v2"],
                 ["volume", "inspect", "--format", "json", "v2"]):
        same(d, *args)
    ref, ours = both(d, "volume", "inspect", "v10", "v2")
    assert json.loads(ours.stdout_text) == json.loads(ref.stdout_text)
    for args in (["volume", "inspect", "v2", "nope"], ["volume", "ls", "-f", "bogus=1"], ["volume", "ls", "x"],
                 ["volume", "create", "a", "b"], ["volume", "rm"], ["volume", "inspect"],
                 ["volume", "create", "--name", "x", "y"]):
        same(d, *args, exit_code=None)
    same(d, "volume", "ls", "--bogus", exit_code=125)


def test_rm_and_prune_match_docker(d) -> None:
    d.cli("volume", "create", "busy")
    d.cli("create", "--name", "vuser", "-v", "busy:/data", "busybox", "true")
    same(d, "volume", "rm", "busy", "nope", exit_code=1)
    d.cli("rm", "vuser")
    assert dockyard(d, "volume", "rm", "busy").stdout_text == "busy\n"
    for n in ("p1", "p2"):
        d.cli("volume", "create", "--label", "prune=yes", n)
    anon = d.cli("volume", "create").stdout_text.strip()
    res = dockyard(d, "volume", "prune", input=b"n\n")
    assert res.stdout_text.startswith("WARNING! This will remove anonymous local volumes")
    res = dockyard(d, "volume", "prune", "-f")
    assert anon in res.stdout_text.splitlines() and "p1" not in res.stdout_text
    res = dockyard(d, "volume", "prune", "-a", "-f", "--filter", "label=prune=yes")
    assert res.stdout_text.startswith("Deleted Volumes:\n")
    assert sorted(res.stdout_text.split("\n\n")[0].splitlines()[1:]) == ["p1", "p2"]
    assert res.stdout_text.endswith("Total reclaimed space: 0B\n")
    same(d, "volume", "prune", "-a", "-f", "--filter", "label=prune=yes")


def test_system_df_verbose_and_system_prune_match_docker(d) -> None:
    d.cli("volume", "create", "--label", "keep=1", "dfvol")
    same(d, "system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}} {{end}}")
    ref, ours = both(d, "system", "df", "-v")
    volumes = lambda text: text.split("Local Volumes space usage:")[1].split("Build cache")[0]  # noqa: E731
    assert volumes(ours.stdout_text) == volumes(ref.stdout_text)
    same(d, "system", "prune", "--volumes", "--filter", "label=a=b", "--filter", "until=1h", exit_code=None)
    for args in (["system", "prune"], ["system", "prune", "-a", "--volumes"],
                 ["system", "prune", "--filter", "label=x=1", "--filter", "until=24h"]):
        same(d, *args, input=b"n\n")
    for n in ("pc1", "pc2"):
        d.cli("create", "--name", n, "busybox", "true")
    d.cli("network", "create", "prunenet")
    anon = d.cli("volume", "create").stdout_text.strip()
    res = dockyard(d, "system", "prune", "-f", "--volumes")
    assert res.returncode == 0, res.stderr_text
    sections = res.stdout_text.split("\n\n")
    assert sections[0].startswith("Deleted Containers:\n") and len(sections[0].splitlines()) == 3
    assert sections[1] == "Deleted Networks:\nprunenet"
    assert sections[2] == f"Deleted Volumes:\n{anon}"
    assert sections[-1].startswith("Total reclaimed space: ")
    assert "dfvol" in d.cli("volume", "ls", "-q").stdout_text
    same(d, "system", "prune", "-f", "--volumes")
