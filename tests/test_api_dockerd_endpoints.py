"""Swarm, plugin and session endpoints and routing, side by side with the reference dockerd.

dockyard implements neither swarm mode nor managed plugins; clients still call these
endpoints (docker-py's ``leave_swarm(force=True)`` tidies up after network tests, the
CLI asks for plugins and nodes) and match on dockerd's status and message.
"""

from __future__ import annotations

import docker
import pytest

import refdocker

pytestmark = pytest.mark.skipif(not refdocker.available(),
                                reason="the reference dockerd is not installed (apt-get install docker.io)")

NOT_A_MANAGER = ("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" "
                 "to connect this node to swarm and try again.")


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory):
    r = refdocker.make_refdocker(tmp_path_factory.mktemp("refdocker"))
    r.start()
    yield r
    r.stop()


def _api(engine) -> docker.APIClient:
    return docker.APIClient(base_url=engine.host, version="1.41", timeout=60)


def _both(d, ref, method: str, path: str, version: str = "1.41", **kwargs) -> tuple[tuple[int, str], tuple[int, str]]:
    """(status, message or body) of the same raw request to dockyard and to dockerd."""
    out = []
    for engine in (d, ref):
        api = _api(engine)
        res = api.request(method, f"{api.base_url}/v{version}{path}", **kwargs)
        try:
            body = res.json()
        except ValueError:
            body = res.text
        out.append((res.status_code, body["message"] if isinstance(body, dict) and "message" in body else body))
    return out[0], out[1]


SWARM_CALLS = [
    ("GET", "/swarm"), ("POST", "/swarm/leave?force=1"), ("POST", "/swarm/leave"), ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"), ("POST", "/swarm/update?version=1"),
    ("GET", "/services"), ("GET", "/services/web"), ("POST", "/services/create"), ("DELETE", "/services/web"),
    ("GET", "/tasks"), ("GET", "/tasks/t1"), ("GET", "/nodes"), ("GET", "/nodes/n1"), ("DELETE", "/nodes/n1"),
    ("POST", "/nodes/n1/update?version=1"), ("GET", "/secrets"), ("GET", "/secrets/s1"),
    ("POST", "/secrets/create"), ("DELETE", "/secrets/s1"), ("GET", "/configs"), ("GET", "/configs/c1"),
    ("POST", "/configs/create"), ("DELETE", "/configs/c1"),
]


@pytest.mark.parametrize("method,path", SWARM_CALLS, ids=[f"{m} {p}" for m, p in SWARM_CALLS])
def test_swarm_endpoints_off_a_swarm(d, ref, method, path):
    kwargs = {"json": {}} if method == "POST" else {}
    mine, theirs = _both(d, ref, method, path, **kwargs)
    assert mine == theirs
    assert mine[0] == 503


def test_docker_py_leave_swarm_force_succeeds(d, ref):
    for engine in (d, ref):
        assert _api(engine).leave_swarm(force=True) is True
    with pytest.raises(docker.errors.APIError) as e:
        _api(d).leave_swarm()
    assert e.value.status_code == 503 and "not part of a swarm" in e.value.explanation


def test_swarm_init_and_join_refused_clearly(d, ref):
    for verb, call in (("init", lambda api: api.init_swarm(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")),
                       ("join", lambda api: api.join_swarm(["127.0.0.1:2377"], "SWMTKN-1-x",
                                                           listen_addr="127.0.0.1:2377"))):
        with pytest.raises(docker.errors.APIError) as e:
            call(_api(d))
        assert e.value.status_code == 400
        assert e.value.explanation == f"swarm mode is not implemented by dockyard: this node cannot {verb} a swarm"
    # nothing changed: still off a swarm, as `docker info` says
    assert d.cli("info", "--format", "{{.Swarm.LocalNodeState}}").stdout_text.strip() == "inactive"
    # the CLI shows dockerd's message for a command that needs a manager
    mine = d.cli("node", "ls", check=False)
    theirs = ref.cli("node", "ls", check=False)
    assert (mine.returncode, mine.stderr_text) == (theirs.returncode, theirs.stderr_text)


PLUGIN_CALLS = [
    ("GET", "/plugins"), ("GET", '/plugins?filters={"enabled":["true"]}'),
    ("GET", "/plugins/privileges?remote=vieux/sshfs"), ("GET", "/plugins/privileges"),
    ("GET", "/plugins/vieux/sshfs/json"), ("GET", "/plugins/sshfs:latest/json"),
    ("POST", "/plugins/sshfs/set"), ("POST", "/plugins/sshfs/enable?timeout=3"), ("POST", "/plugins/sshfs/enable"),
    ("POST", "/plugins/sshfs/disable"), ("POST", "/plugins/sshfs/push"),
    ("POST", "/plugins/sshfs/upgrade?remote=vieux/sshfs"), ("POST", "/plugins/sshfs/upgrade"),
    ("DELETE", "/plugins/sshfs"), ("DELETE", "/plugins/sshfs?force=1"), ("POST", "/plugins/create"),
    ("POST", "/plugins/pull"),
]


@pytest.mark.parametrize("method,path", PLUGIN_CALLS, ids=[f"{m} {p}" for m, p in PLUGIN_CALLS])
def test_plugin_endpoints_without_plugins(d, ref, method, path):
    kwargs = {"json": []} if method == "POST" else {}
    mine, theirs = _both(d, ref, method, path, **kwargs)
    assert mine[1] == theirs[1]
    # dockerd answers 500 for a query it cannot parse; dockyard tells the client it is at fault
    assert mine[0] == (400 if theirs[0] == 500 else theirs[0])


def test_plugin_install_refused(d, ref):
    """Neither can fetch the plugin (no network here); dockyard says it never installs one."""
    for path in ("/plugins/pull?remote=vieux/sshfs", "/plugins/create?name=sshfs"):
        mine, theirs = _both(d, ref, "POST", path, json=[])
        assert mine[0] in (400, 501) and theirs[0] == 500
        assert "managed plugins are not supported by dockyard" in mine[1]
    assert _api(d).plugins() == _api(ref).plugins() == []
    mine, theirs = d.cli("plugin", "ls"), ref.cli("plugin", "ls")
    assert mine.stdout_text == theirs.stdout_text


@pytest.mark.parametrize("headers", [{}, {"Upgrade": "spdy", "Connection": "Upgrade"}], ids=["plain", "other-proto"])
def test_session_without_buildkit(d, ref, headers):
    for version in ("1.30", "1.41"):
        mine, theirs = _both(d, ref, "POST", "/session", version, headers=headers)
        assert mine == theirs


def test_session_h2c_refused(d):
    api = _api(d)
    res = api.post(api._url("/session"), headers={"Upgrade": "h2c", "Connection": "Upgrade"})
    assert res.status_code == 501 and "BuildKit sessions are not supported" in res.json()["message"]


@pytest.mark.parametrize("method,path", [("GET", "/networks/"), ("GET", "/containers/json/"), ("POST", "/info"),
                                         ("DELETE", "/containers/json"), ("PUT", "/images/json")])
def test_paths_route_as_dockerd(d, ref, method, path):
    mine, theirs = _both(d, ref, method, path)
    assert mine[0] == theirs[0]
    if mine[0] == 200:
        assert sorted(n["Name"] for n in mine[1]) == sorted(n["Name"] for n in _api(d).networks())
    else:
        assert mine[1] == theirs[1]
