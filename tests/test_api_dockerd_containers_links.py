"""Legacy links on the default bridge, side by side with the reference dockerd (issue 15): the
ALIAS_* variables and hosts entry a linked container gets, the link's name, and its removal."""

from __future__ import annotations

import re

import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd

NAMES = ("lk-web", "lk-app", "lk-late")
ADDRESS = re.compile(r"\b\d+\.\d+\.\d+\.\d+\b")


REF_BRIDGE = True  # the reference dockerd gets a bridge of its own (conftest's ref fixture)


@pytest.fixture
def engines(d, ref):
    engines = {"dockerd": ref, "dockyard": d}
    yield engines
    for e in engines.values():
        cleanup(e, *NAMES)


def _child(e) -> dict:
    e.cli("run", "-d", "--name", "lk-web", "-h", "webhost", "-e", "SECRET=s1", "-e", "PATH=/x:/bin",
          "--expose", "80", "--expose", "53/udp", "--expose", "7000-7002", "busybox", "sleep", "300")
    return api_of(e).inspect_container("lk-web")


def test_link_variables_and_hosts_entry(engines) -> None:
    seen = {}
    for which, e in engines.items():
        child = _child(e)
        ip = child["NetworkSettings"]["IPAddress"]
        out = e.cli("run", "--name", "lk-app", "--link", "lk-web:db", "busybox", "sh", "-c",
                    "env | sort | grep -v '^HOSTNAME=\\|^HOME=\\|^SHLVL=\\|^PWD='; cat /etc/hosts").stdout_text
        lines = out.replace(ip, "CHILD").splitlines()
        own = lines.pop()  # the container's own entry: its address and ID differ
        assert ADDRESS.match(own)
        seen[which] = (lines, api_of(e).inspect_container("lk-app")["HostConfig"]["Links"])
    assert seen["dockyard"] == seen["dockerd"]
    lines, stored = seen["dockerd"]
    assert "DB_ENV_SECRET=s1" in lines and "DB_PORT=udp://CHILD:53" in lines and "DB_NAME=/lk-app/db" in lines
    assert "CHILD\tdb webhost lk-web" in lines and stored == ["/lk-web:/lk-app/db"]


def test_link_name_and_its_removal(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        _child(e)
        api.create_container("busybox", "true", name="lk-app", host_config=api.create_host_config(
            links={"lk-web": "db"}))
        rows = [
            sorted(api.containers(all=True, filters={"name": "lk-web"})[0]["Names"]),
            api.inspect_container("lk-app/db")["Name"],
            outcome(lambda: api.remove_container("/lk-web", link=True)),
            outcome(lambda: api.remove_container("/nope/db", link=True)),
            outcome(lambda: api.remove_container("lk-app/nope", link=True)),
            outcome(lambda: api.remove_container("lk-app/db", link=True)),
            api.inspect_container("lk-app")["HostConfig"]["Links"],
            sorted(api.containers(all=True, filters={"name": "lk-web"})[0]["Names"]),
            outcome(lambda: api.remove_container("lk-app/db", link=True)),
            api.inspect_container("lk-web")["State"]["Running"],
        ]
        seen[which] = rows
    ours, ref = seen["dockyard"], seen["dockerd"]
    # dockerd 20.10 answers the default name's removal with a 500; it is the client's conflict here
    assert ours[2] == (409, ref[2][1]) and ref[2][0] == 500
    assert ours[:2] + ours[3:] == ref[:2] + ref[3:]
    assert ref[0] == ["/lk-app/db", "/lk-web"] and ref[6] is None


def test_start_refused_while_the_child_does_not_run(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        _child(e)
        api.create_container("busybox", "true", name="lk-late", host_config=api.create_host_config(
            links={"lk-web": "db"}))
        api.stop("lk-web", timeout=0)
        status, message = outcome(lambda: api.start("lk-late"))
        seen[which] = (status, message, api.inspect_container("lk-late")["State"]["Status"])
    ours, ref = seen["dockyard"], seen["dockerd"]
    assert ours[1:] == ref[1:] == ("Cannot link to a non running container: /lk-web AS /lk-late/db", "created")
    assert ours[0] == 409 and ref[0] == 500  # dockerd 20.10's 500; a conflict of the client's making here


def test_links_follow_renames(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        _child(e)
        api.create_container("busybox", "true", name="lk-app", host_config=api.create_host_config(
            links={"lk-web": "db"}))
        api.rename("lk-web", "lk-late")
        api.rename("lk-app", "lk-app2")
        try:
            links = api.inspect_container("lk-app2")["HostConfig"]["Links"]
            api.start("lk-app2")
            seen[which] = (links, api.wait("lk-app2")["StatusCode"])
        finally:
            cleanup(e, "lk-app2")
    assert seen["dockyard"] == seen["dockerd"] == (["/lk-late:/lk-app2/db"], 0)


def test_links_refused_with_host_or_container_networking(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        _child(e)
        seen[which] = [outcome(lambda: api.create_container("busybox", "true", host_config=api.create_host_config(
            network_mode=mode, links={"lk-web": "db"}))) for mode in ("host", "container:lk-web")]
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockerd"][0] == (400, "conflicting options: host type networking can't be used with links. "
                                       "This would result in undefined behavior")
