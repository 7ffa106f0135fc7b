"""Request validation at the boundary (issue 12 items 10-13).

Every wrong-typed body is a 400 naming the field, never a 500; values that would
break listing are refused at create; a bad record on disk is skipped, not fatal;
names follow dockerd's ASCII grammars exactly; a web page cannot drive the API.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

BASE = {"Image": "busybox", "Cmd": ["true"]}


def _create(**fields) -> dict:
    return {**BASE, **fields}


def _host(**fields) -> dict:
    return {**BASE, "HostConfig": fields}


# (what, method, path, body, words the 400 must hold)
WRONG_TYPES = [
    ("Env: 5", "POST", "/containers/create", _create(Env=5),
     "cannot unmarshal number into Go struct field ContainerConfigWrapper.Env of type []string"),
    ("Env: [null]", "POST", "/containers/create", _create(Env=[None]), "ContainerConfigWrapper.Env"),
    ("Cmd: 5", "POST", "/containers/create", _create(Cmd=5), "ContainerConfigWrapper.Cmd"),
    ("HostConfig: x", "POST", "/containers/create", _create(HostConfig="x"),
     "cannot unmarshal string into Go struct field ContainerConfigWrapper.HostConfig"),
    ("Labels: [1]", "POST", "/containers/create", _create(Labels=[1]), "ContainerConfigWrapper.Labels"),
    ("Binds: [5]", "POST", "/containers/create", _host(Binds=[5]), "HostConfig.Binds of type string"),
    ("Ulimits: [x]", "POST", "/containers/create", _host(Ulimits=["x"]), "HostConfig.Ulimits"),
    ("CapAdd: [5]", "POST", "/containers/create", _host(CapAdd=[5]), "HostConfig.CapAdd"),
    ("SecurityOpt: [5]", "POST", "/containers/create", _host(SecurityOpt=[5]), "HostConfig.SecurityOpt"),
    ("NetworkingConfig: 5", "POST", "/containers/create", _create(NetworkingConfig=5), "NetworkingConfig"),
    ("OomScoreAdj: x", "POST", "/containers/create", _host(OomScoreAdj="x"), "HostConfig.OomScoreAdj of type"),
    ("RestartPolicy: 5", "POST", "/containers/create", _host(RestartPolicy=5), "HostConfig.RestartPolicy"),
    ("Mounts: [5]", "POST", "/containers/create", _host(Mounts=[5]), "HostConfig.Mounts"),
    ("tmpfs Mode: abc", "POST", "/containers/create",
     _host(Mounts=[{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Mode": "abc"}}]), "TmpfsOptions.Mode"),
    ("Image: 5", "POST", "/containers/create", {"Image": 5}, "ContainerConfigWrapper.Image of type string"),
    ("VolumesFrom: [5]", "POST", "/containers/create", _host(VolumesFrom=[5]), "HostConfig.VolumesFrom"),
    ("HostPort: 99999", "POST", "/containers/create",
     {**_host(PortBindings={"80/tcp": [{"HostPort": "99999"}]}), "ExposedPorts": {"80/tcp": {}}},
     'invalid port specification: "99999"'),
    ("Memory: huge", "POST", "/containers/create", _host(Memory=2 ** 70), "HostConfig.Memory"),
    ("exec Cmd: 5", "POST", "/containers/{cid}/exec", {"Cmd": 5}, "Cmd"),
    ("exec start: string", "POST", "/exec/{eid}/start", "x", "ExecStartOptions"),
    ("update Memory: x", "POST", "/containers/{cid}/update", {"Memory": "x"}, "UpdateConfig.Memory of type int64"),
    ("volume Name: 5", "POST", "/volumes/create", {"Name": 5}, "Name of type string"),
    ("volume DriverOpts: 5", "POST", "/volumes/create", {"DriverOpts": 5}, "DriverOpts"),
    ("network IPAM: 5", "POST", "/networks/create", {"Name": "v-ipam", "IPAM": 5}, "IPAM"),
    ("bridge name with a space", "POST", "/networks/create",
     {"Name": "v-space", "Options": {"com.docker.network.bridge.name": "br x"}}, "invalid bridge name"),
    ("disconnect: string", "POST", "/networks/bridge/disconnect", "x",
     "json: cannot unmarshal string into Go value of type DisconnectOptions"),
    ("connect: string", "POST", "/networks/bridge/connect", "x", "ConnectOptions"),
    ("connect: MacAddress", "POST", "/networks/bridge/connect",
     {"Container": "x", "EndpointConfig": {"MacAddress": "x"}}, "x is not a valid mac address"),
    ("volume Name: too long", "POST", "/volumes/create", {"Name": "a" * 300}, "longer than 255"),
    ("top: ps_args ps refuses", "GET", "/containers/{cid}/top?ps_args=--nope", None, "Error running ps"),
]


@pytest.fixture(scope="module")
def target(d):
    """A running container and an exec of it, for the endpoints that need one."""
    api = d.api()
    cid = api.create_container("busybox", ["sleep", "300"])["Id"]
    api.start(cid)
    eid = api.exec_create(cid, ["true"])["Id"]
    yield {"cid": cid, "eid": eid}
    api.remove_container(cid, force=True)


def _post(d, path: str, body, headers: dict | None = None, method: str = "POST"):
    api = d.api()
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
    return api.request(method, api.base_url + "/v1.50" + path, data=data,
                       headers={"Content-Type": "application/json", **(headers or {})}, timeout=60)


@pytest.mark.parametrize("what,method,path,body,words", WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_wrong_type_is_400(d, target, what, method, path, body, words):
    res = _post(d, path.format(**target), body, method=method)
    assert res.status_code == 400, (res.status_code, res.text)
    assert words in res.json()["message"], res.text


def test_deep_json_is_400_not_recursion(d):
    res = _post(d, "/containers/create", b"[" * 1000 + b"]" * 1000)
    assert res.status_code == 400 and "nested deeper" in res.json()["message"], res.text
    res = _post(d, "/containers/create", b'{"Labels": ' + b"[" * 100_000)
    assert res.status_code == 400, res.text


def test_depth_scan_is_linear(d):
    """An unterminated string of escaped quotes made the nesting scan quadratic (minutes per request)."""
    res = _post(d, "/containers/create", b'{"Env": ["' + b'\\"' * 200_000 + b"\\")
    assert res.status_code == 400, res.text


def test_oversized_json_body_is_400(d):
    res = _post(d, "/containers/create", b'{"Env": ["' + b"x" * (5 * 1024 * 1024) + b'"]}')
    assert res.status_code == 400 and "larger than" in res.json()["message"], res.text


def test_json_body_needs_json_content_type(d):
    """A cross-site text/plain POST created and started a container (dockerd's CheckForJSON)."""
    api = d.api()
    before = len(api.containers(all=True))
    res = api.post(api.base_url + "/v1.50/containers/create", data=json.dumps(BASE),
                            headers={"Content-Type": "text/plain"})
    assert res.status_code == 400, res.text
    assert res.json()["message"] == "unsupported Content-Type header (text/plain): must be 'application/json'"
    res = api.post(api.base_url + "/v1.50/volumes/create", data=json.dumps({"Name": "ctv"}))
    assert res.status_code == 400 and "Content-Type" in res.json()["message"], res.text
    assert len(api.containers(all=True)) == before
    # a bodiless POST needs no Content-Type (docker-py sends none on some)
    res = api.post(api.base_url + "/v1.50/volumes/create")
    assert res.status_code == 201, res.text
    api.remove_volume(res.json()["Name"])
    ok = api.post(api.base_url + "/v1.50/volumes/create", data=json.dumps({"Name": "ctv"}),
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 201, ok.text
    api.remove_volume("ctv")


def test_browser_origin_refused(d):
    api = d.api()
    for method, path in (("GET", "/containers/json"), ("POST", "/containers/create"), ("OPTIONS", "/_ping")):
        res = api.request(method, api.base_url + "/v1.50" + path, data=json.dumps(BASE),
                                   headers={"Origin": "http://evil.example", "Content-Type": "application/json"})
        assert res.status_code == 403, (method, path, res.status_code, res.text)
        assert "Access-Control-Allow-Origin" not in res.headers
    assert api.get(api.base_url + "/_ping", headers={"Origin": ""}).status_code == 403
    assert api.get(api.base_url + "/_ping").status_code == 200


def test_api_cors_header_allows_that_origin(fresh_daemon):
    fresh_daemon.extra_args += ["--api-cors-header", "http://ok.example"]
    fresh_daemon.start()
    api = fresh_daemon.api()
    res = api.get(api.base_url + "/_ping", headers={"Origin": "http://ok.example"})
    assert res.status_code == 200 and res.headers["Access-Control-Allow-Origin"] == "http://ok.example"
    pre = api.options(api.base_url + "/containers/create", headers={"Origin": "http://ok.example"})
    assert pre.status_code == 200 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert api.get(api.base_url + "/_ping", headers={"Origin": "http://x.example"}).status_code == 403


@pytest.mark.parametrize("body,words", [
    (_create(Cmd=[1, 2]), "ContainerConfigWrapper.Cmd of type string"),
    (_create(ExposedPorts={"abc/tcp": {}}), 'invalid port specification: "abc"'),
    (_create(ExposedPorts={"80/tcp\n": {}}), "invalid proto: tcp\n"),
    (_host(PortBindings={"x/tcp": [{"HostPort": "80"}]}), 'invalid port specification: "x"'),
    (_create(Labels={"a": 1}), "ContainerConfigWrapper.Labels of type string"),
    (_create(Healthcheck={"Test": [1]}), "Healthcheck.Test"),
    (_create(Volumes={"/data": 1}), "Volumes"),
    (_create(Tty="yes"), "ContainerConfigWrapper.Tty of type bool"),
    (_create(Entrypoint=[None]), "Entrypoint"),
    (_host(Dns=[1]), "HostConfig.Dns"),
    (_host(Devices=["x"]), "HostConfig.Devices"),
    (_host(LogConfig={"Type": "json-file", "Config": {"max-size": 1}}), "LogConfig.Config"),
    (_host(CpuShares=1.5), "HostConfig.CpuShares"),
    (_host(ExtraHosts=["a:1.2.3.4\nb"]), "invalid IP address in add-host"),
    (_host(ExtraHosts=["a:notanip"]), "invalid IP address in add-host"),
    (_create(Hostname="a\nb"), "invalid hostname format"),
    (_create(Hostname="é"), "invalid hostname format"),
    (_create(Domainname="a\nb"), "invalid hostname format"),
    ({**_host(PortBindings={"80/tcp": [{"HostIp": "abc", "HostPort": "8080"}]}), "ExposedPorts": {"80/tcp": {}}},
     "invalid IP address: abc"),
    (_host(Dns=["1.1.1.1\nsearch evil"]), "invalid IP address"),
    (_host(DnsSearch=["a.example\nnameserver 1.2.3.4"]), "is not a valid domain"),
    (_host(DnsOptions=["ndots:1\nnameserver 1.2.3.4"]), "invalid DNS option"),
    (_create(MacAddress="x"), "x is not a valid mac address"),
    ({**BASE, "NetworkingConfig": {"EndpointsConfig": {"bridge": {"MacAddress": "02:42"}}}}, "not a valid mac address"),
])
def test_values_that_break_listing_are_refused(d, body, words):
    res = _post(d, "/containers/create", body)
    assert res.status_code == 400, (res.status_code, res.text)
    assert words in res.json()["message"], res.text
    d.cli("ps", "-a")


def test_network_named_by_a_number_refused(d):
    res = _post(d, "/networks/create", {"Name": 5})
    assert res.status_code == 400 and "Name of type string" in res.json()["message"], res.text
    d.cli("network", "ls")


def test_what_clients_send_still_works(d):
    """docker-py's nulls, string commands (strslice), ExtraHosts with host-gateway, port ranges."""
    api = d.api()
    res = _post(d, "/containers/create", {**BASE, "Cmd": "true", "Healthcheck": None, "NetworkingConfig": None,
                                          "Env": None, "ExposedPorts": {"8000-8001/udp": {}, "90": {}},
                                          "HostConfig": {"ExtraHosts": ["h:host-gateway", "v6:::1", "x=10.0.0.1"],
                                                         "Dns": ["1.1.1.1", "fe80::1"], "DnsSearch": [".", "a.b."],
                                                         "DnsOptions": ["ndots:2"], "PortBindings": {
                                                             "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                                                         "Memory": 0}})
    assert res.status_code == 201, res.text
    api.remove_container(res.json()["Id"], force=True)


@pytest.mark.parametrize("name", ["abc\n", "abc\n\n", "é-name", "a", "-abc", "a b"])
def test_bad_container_and_volume_names(d, name):
    api = d.api()
    res = api.post(api.base_url + "/v1.50/containers/create", params={"name": name},
                            data=json.dumps(BASE), headers={"Content-Type": "application/json"})
    assert res.status_code == 400 and "Invalid container name" in res.json()["message"], res.text
    res = _post(d, "/volumes/create", {"Name": name})
    assert res.status_code == 400, res.text
    assert not any(v["Name"] == name for v in api.volumes()["Volumes"] or [])


@pytest.mark.parametrize("tag", ["é", "v1\n", "-x", "a" * 129])
def test_bad_tags_refused(d, tag):
    api = d.api()
    res = api.post(api.base_url + "/v1.50/images/busybox/tag", params={"repo": "x", "tag": tag})
    assert res.status_code == 400, res.text
    d.cli("images")


@pytest.mark.parametrize("ref", ["busybox\n", "bus\u00e9box", "busybox:é"])
def test_bad_references_refused(d, ref):
    res = _post(d, "/containers/create", {"Image": ref})
    assert res.status_code == 400, res.text


def _record(data_root: str, sub: str, suffix: str) -> list[Path]:
    return sorted(p for p in Path(data_root, sub).rglob("*" + suffix) if p.is_file())


def test_bad_records_are_skipped_not_fatal(fresh_daemon, busybox_tar):
    """A record that breaks a client's decoder (or ours) is logged and left out of lists, across restarts."""
    fresh_daemon.start()
    fresh_daemon.cli("load", "-i", busybox_tar.path)
    ok = fresh_daemon.cli("create", "--name", "ok", "busybox", "true").stdout_text.strip()
    bad_ids = [fresh_daemon.cli("create", "--name", f"bad{i}", "busybox", "true").stdout_text.strip()
               for i in range(4)]
    fresh_daemon.cli("network", "create", "goodnet")
    fresh_daemon.cli("network", "create", "badnet")
    fresh_daemon.cli("volume", "create", "goodvol")
    fresh_daemon.stop()

    def rewrite(path: Path, change) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    containers = {p.parent.name: p for p in _record(fresh_daemon.data_root, "containers", ".json")
                  if p.parent.name in bad_ids and p.name != "hostconfig.json"}
    assert len(containers) == 4, containers
    for cid, change in zip(bad_ids, [
        lambda c: c["config"].update(Labels={"a": 1}),
        lambda c: c["config"].update(ExposedPorts={"abc/tcp": {}}),
        lambda c: c.update(args=[1, 2]),
        lambda c: c.update(config=[1]),
    ]):
        rewrite(containers[cid], change)
    nets = [p for p in _record(fresh_daemon.data_root, "network", ".json") if "badnet" in p.read_text()]
    assert len(nets) == 1
    rewrite(nets[0], lambda n: n.update(name=5))
    Path(fresh_daemon.data_root, "volumes", "badvol").mkdir()
    Path(fresh_daemon.data_root, "volumes", "badvol", "volume.json").write_text('{"name": 5, "labels": [1]}')

    fresh_daemon.start()
    ps = fresh_daemon.cli("ps", "-a", "--format", "{{.Names}}").stdout_text.split()
    assert ps == ["ok"]
    assert fresh_daemon.cli("inspect", ok)
    networks = fresh_daemon.cli("network", "ls", "--format", "{{.Name}}").stdout_text.split()
    assert "goodnet" in networks and "badnet" not in networks and "5" not in networks
    assert fresh_daemon.cli("volume", "ls", "--format", "{{.Name}}").stdout_text.split() == ["goodvol"]
    assert "skipping" in fresh_daemon.log()
    assert os.path.exists(containers[bad_ids[0]])  # kept for the operator, not deleted


def test_legacy_volume_with_newline_in_name_can_be_removed(fresh_daemon):
    """A volume named "abc\\n" (accepted by older versions) lists and is removed, by its exact name."""
    fresh_daemon.start()
    fresh_daemon.cli("volume", "create", "legacy")
    fresh_daemon.stop()
    root = Path(fresh_daemon.data_root, "volumes")
    record = root / "legacy" / "volume.json"
    data = json.loads(record.read_text())
    data["name"] = "abc\n"
    record.write_text(json.dumps(data))
    (root / "legacy").rename(root / "abc\n")
    fresh_daemon.start()
    api = fresh_daemon.api()
    assert [v["Name"] for v in api.volumes()["Volumes"]] == ["abc\n"]
    res = api.delete(api.base_url + "/v1.50/volumes/abc%0A")
    assert res.status_code == 204, res.text
    assert not api.volumes()["Volumes"]


def _retyped_image(src: str, dst: Path, tag: str, labels) -> None:
    """``src`` (a `docker save` archive) with its config's Labels replaced and a new tag."""
    import hashlib
    import io
    import tarfile

    with tarfile.open(src) as tin:
        members = {m.name: (m, tin.extractfile(m).read() if m.isfile() else None) for m in tin.getmembers()}
    manifest = json.loads(members["manifest.json"][1])
    old = manifest[0]["Config"]
    config = json.loads(members[old][1])
    config["config"]["Labels"] = labels
    data = json.dumps(config).encode()
    new = f"blobs/sha256/{hashlib.sha256(data).hexdigest()}" if old.startswith("blobs/") else \
        f"{hashlib.sha256(data).hexdigest()}.json"
    manifest[0]["Config"], manifest[0]["RepoTags"] = new, [tag]
    with tarfile.open(dst, "w") as tout:
        for name, (m, content) in members.items():
            if name in (old, "manifest.json", "index.json", "repositories"):
                continue
            tout.addfile(m, io.BytesIO(content) if content is not None else None)
        for name, content in ((new, data), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tout.addfile(info, io.BytesIO(content))


def test_image_with_wrong_typed_config_is_left_out_of_the_list(d, busybox_tar, tmp_path):
    bad = tmp_path / "bad.tar"
    _retyped_image(busybox_tar.path, bad, "badlabels:1", {"a": 1})
    d.cli("load", "-i", str(bad))
    try:
        shown = d.cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout_text.split()
        assert "busybox:latest" in shown and "badlabels:1" not in shown
    finally:
        d.cli("rmi", "badlabels:1", check=False)


def test_shipped_schema_is_the_generated_one():
    """src/dockyard/apischema/request_schema.json is what scripts/gen_api_schema.py makes of the spec."""
    import importlib.util

    spec_path = Path(__file__).resolve().parents[3] / "shared" / "api" / "docker-engine-v1.50.yaml"
    if not spec_path.exists():
        pytest.skip(f"the Engine API spec is not at {spec_path}")
    root = Path(__file__).resolve().parents[2]
    loader = importlib.util.spec_from_file_location("gen_api_schema", root / "scripts" / "gen_api_schema.py")
    gen = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gen)
    shipped = json.loads((root / "src" / "dockyard" / "apischema" / "request_schema.json").read_text())
    assert gen.generate(str(spec_path)) == shipped, "run scripts/gen_api_schema.py"
