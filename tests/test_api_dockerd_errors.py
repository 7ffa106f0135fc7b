"""Errors clients match on, side by side with the reference dockerd: status and message.

dockerd 20.10 answers a body it cannot decode with 500; dockyard answers 400 (the client's
fault) with the same words. Where newer dockerd words an error differently, a client asking
for API 1.44 or later is told the newer words.
"""

from __future__ import annotations

import json
import socket
import subprocess

import docker
import pytest

import refdocker

pytestmark = pytest.mark.skipif(not refdocker.available(),
                                reason="the reference dockerd is not installed (apt-get install docker.io)")


def _post(engine, path: str, body: bytes, version: str = "1.41") -> tuple[int, str]:
    api = docker.APIClient(base_url=engine.host, version=version, timeout=60)
    res = api.post(f"{api.base_url}/v{version}{path}", data=body, headers={"Content-Type": "application/json"})
    try:
        message = res.json().get("message", "")
    except ValueError:
        message = res.text
    if res.status_code == 201:
        api.remove_container(res.json()["Id"], force=True)
    return res.status_code, message


MALFORMED = [b"xyz", b'{"Image":"busybox"', b'{"Image":', b'{"Image":"busybox",}', b'{"Image" "busybox"}',
             b'{"Image":"busybox" "Cmd":[]}', b'{"Cmd":["a" "b"]}', b'{"Cmd":["a",]}', b'{"Tty":tru}',
             b'{"Tty":nul}', b'{"StopTimeout":-}', b'{"StopTimeout":1.}', b'{"StopTimeout":1e+}',
             b'{"Image":"\\q"}', b'{"Image":"\\u12x4"}', b'{"Image":"a\nb"}', b'{"Image":"a\x01"}',
             b'{"StopTimeout":NaN}', b"{'Image':1}", b'{"Image":\xc3\xa9}', b"[[[[", b'"busybox']


@pytest.mark.parametrize("body", MALFORMED, ids=[repr(b)[2:-1][:30] for b in MALFORMED])
def test_malformed_json_told_in_gos_words(d, ref, body):
    mine, theirs = _post(d, "/containers/create", body), _post(ref, "/containers/create", body)
    assert mine[1] == theirs[1]
    assert theirs[0] == 500 and mine[0] == 400


CREATE_BODIES = {
    "env-without-name": {"Env": ["=x"]},
    "env-empty": {"Env": [""]},
    "link-to-missing": {"HostConfig": {"Links": ["nosuch:alias"]}},
    "link-to-missing-no-alias": {"HostConfig": {"Links": ["/nosuch"]}},
    "port-spec": {"HostConfig": {"PortBindings": {"1-abc/tcp": [{"HostPort": "1"}]}}},
    "host-port": {"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}},
    "memory-minimum": {"HostConfig": {"Memory": 1000}},
    "healthcheck-start-period": {"Healthcheck": {"Test": ["CMD", "true"], "StartPeriod": 1000}},
    "healthcheck-interval": {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 5}},
    "healthcheck-timeout": {"Healthcheck": {"Test": ["CMD", "true"], "Timeout": -5}},
    "healthcheck-retries": {"Healthcheck": {"Test": ["CMD", "true"], "Retries": -1}},
    "restart-always-count": {"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}},
    "restart-no-negative": {"HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": -1}}},
    "restart-on-failure-negative": {"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -2}}},
    "restart-unknown": {"HostConfig": {"RestartPolicy": {"Name": "bogus"}}},
    "restart-empty-name-count": {"HostConfig": {"RestartPolicy": {"Name": "", "MaximumRetryCount": 3}}},
    "image-uppercase": {"Image": "Bad:tag"},
    "image-bad-tag": {"Image": "busybox:bad tag"},
}


@pytest.mark.parametrize("name", list(CREATE_BODIES))
def test_create_refusals_as_dockerd(d, ref, name):
    body = json.dumps({"Image": "busybox", "Cmd": ["true"], **CREATE_BODIES[name]}).encode()
    mine, theirs = _post(d, "/containers/create", body), _post(ref, "/containers/create", body)
    assert mine == theirs


def test_newer_clients_get_newer_words(d):
    body = json.dumps({"Image": "busybox", "Cmd": ["true"],
                       "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}}).encode()
    assert _post(d, "/containers/create", body, "1.44") == (
        400, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
    body = json.dumps({"Image": "Bad"}).encode()
    assert _post(d, "/containers/create", body, "1.44") == (
        400, "invalid reference format: repository name (library/Bad) must be lowercase")


def test_no_command_specified(d, ref, tmp_path):
    (tmp_path / "f").write_text("x")
    tar = tmp_path / "f.tar"
    subprocess.run(["tar", "-C", str(tmp_path), "-cf", str(tar), "f"], check=True)
    out = []
    for engine in (d, ref):
        engine.cli("import", str(tar), "errors-nocmd:1")
        res = engine.cli("create", "errors-nocmd:1", check=False)
        out.append((res.returncode, res.stderr_text))
        engine.cli("rmi", "errors-nocmd:1")
    assert out[0] == out[1] == (1, "Error response from daemon: No command specified\n")


def test_conflicts_with_a_running_container(d, ref):
    """At API 1.41 (the CLI negotiates the newest version with each daemon, so docker-py here)."""
    out = []
    for engine in (d, ref):
        engine.cli("run", "-d", "--name", "errors-running", "busybox", "sleep", "60")
        try:
            cid = engine.cli("inspect", "-f", "{{.Id}}", "errors-running").stdout_text.strip()
            api = docker.APIClient(base_url=engine.host, version="1.41", timeout=60)
            with pytest.raises(docker.errors.APIError) as e:
                api.remove_container("errors-running")
            rmi = engine.cli("rmi", "busybox", check=False)
            out.append((e.value.status_code,
                        e.value.explanation.replace(cid, "ID"), rmi.returncode,
                        rmi.stderr_text.split(" - ")[0]))
        finally:
            engine.cli("rm", "-f", "errors-running")
    assert out[0] == out[1]
    assert out[0][:2] == (409, "You cannot remove a running container ID. Stop the container before attempting "
                               "removal or force remove")


def _raw(engine, request: bytes) -> bytes:
    """A raw request's whole answer, its per-daemon headers (Date, Server, Api-Version...) left out."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(engine.socket)
    sock.sendall(request)
    out = b""
    try:
        while chunk := sock.recv(4096):
            out += chunk
    except socket.timeout:
        pass
    sock.close()
    keep = (b"HTTP/", b"Content-Type", b"Connection", b"Upgrade", b"No such", b"")
    return b"\r\n".join(line for line in out.split(b"\r\n") if line.startswith(keep))


def test_failed_attach_hijack_body(d, ref):
    request = (b"POST /v1.41/containers/nosuch/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n"
               b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
    mine, theirs = _raw(d, request), _raw(ref, request)
    assert mine == theirs
    assert mine.startswith(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/vnd.docker.raw-stream\r\n")
    res_mine = d.cli("attach", "nosuch", check=False)
    res_theirs = ref.cli("attach", "nosuch", check=False)
    assert (res_mine.returncode, res_mine.stderr_text) == (res_theirs.returncode, res_theirs.stderr_text)


def test_exec_on_a_stopped_container(d, ref):
    out = []
    for engine in (d, ref):
        api = docker.APIClient(base_url=engine.host, version="1.41", timeout=60)
        cid = api.create_container("busybox", "sleep 60")["Id"]
        try:
            api.start(cid)
            exec_id = api.exec_create(cid, "true")["Id"]
            api.kill(cid)
            api.wait(cid)
            with pytest.raises(docker.errors.APIError) as start:
                api.exec_start(exec_id)
            with pytest.raises(docker.errors.APIError) as create:
                api.exec_create(cid, "true")
            out.append((start.value.status_code, start.value.explanation.replace(exec_id, "EXEC"),
                        create.value.status_code, create.value.explanation.replace(cid, "ID")))
        finally:
            api.remove_container(cid, force=True)
    assert out[0] == out[1] == (404, "No such exec instance: EXEC", 409, "Container ID is not running")


def test_state_conflicts_as_dockerd(d, ref):
    """kill, pause, exec, rm and rename against a container in the wrong state, at API 1.41."""
    out = []
    for engine in (d, ref):
        api = docker.APIClient(base_url=engine.host, version="1.41", timeout=60)
        running = api.create_container("busybox", "sleep 60", name="errors-busy")["Id"]
        stopped = api.create_container("busybox", "true", name="errors-idle")["Id"]
        seen = []

        def attempt(call) -> None:
            try:
                call()
                seen.append("ok")
            except docker.errors.APIError as e:
                seen.append((e.status_code >= 500 or e.status_code,
                             e.explanation.replace(running, "RUNNING").replace(stopped, "STOPPED")))

        try:
            attempt(lambda: api.kill(stopped))
            attempt(lambda: api.pause(stopped))
            api.start(running)
            api.pause(running)
            attempt(lambda: api.pause(running))
            attempt(lambda: api.exec_create(running, "true"))
            attempt(lambda: api.remove_container(running))
            attempt(lambda: api.rename(stopped, "errors-busy"))
            attempt(lambda: api.create_container("busybox", "true", name="errors-idle"))
            attempt(lambda: api.top(stopped))
        finally:
            api.remove_container(running, force=True)
            api.remove_container(stopped, force=True)
        out.append(seen)
    assert out[0] == out[1]
    assert out[0][0] == (409, "Cannot kill container: STOPPED: Container STOPPED is not running")


@pytest.mark.parametrize("body", [b"{}", b"null"])
def test_empty_config(d, ref, body):
    assert _post(d, "/containers/create", body) == _post(ref, "/containers/create", body) == (
        400, "Config cannot be empty in order to create a container")
