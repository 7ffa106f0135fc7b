"""The daemon as a user meets it first: version, info, ping, configuration, start-up guards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import requests  # noqa: F401  (docker-py's transport; imported to fail early if missing)

from conftest import DOCKYARDD, make_daemon


def test_docker_version_shows_server(daemon):
    out = daemon.cli("version").stdout_text
    assert "Server: dockyard" in out
    assert "API version:      1.50 (minimum version 1.24)" in out
    assert "runc:" in out


def test_docker_info_reports_host_facts(daemon):
    info = json.loads(daemon.cli("info", "--format", "{{json .}}").stdout_text)
    assert info["DockerRootDir"] == daemon.data_root
    assert info["OSType"] == "linux"
    assert info["NCPU"] == os.cpu_count()
    assert info["CgroupDriver"] == "cgroupfs"
    assert info["CgroupVersion"] in ("1", "2")
    assert "runc" in info["Runtimes"]
    assert info["Images"] == len(daemon.client().images.list(all=True))


def test_ping_headers_and_versions(daemon):
    api = daemon.api()
    resp = api.get(api.base_url + "/_ping")
    assert resp.text == "OK"
    assert resp.headers["API-Version"] == "1.50"
    assert resp.headers["Builder-Version"] == "1"
    assert resp.headers["OSType"] == "linux"
    head = api.head(api.base_url + "/_ping")
    assert head.status_code == 200 and head.content == b""
    assert api.get(api.base_url + "/v1.24/version").json()["ApiVersion"] == "1.50"
    too_new = api.get(api.base_url + "/v1.99/version")
    assert too_new.status_code == 400
    assert "Maximum supported API version is 1.50" in too_new.json()["message"]
    too_old = api.get(api.base_url + "/v1.12/version")
    assert too_old.status_code == 400
    missing = api.get(api.base_url + "/v1.50/nope")
    assert missing.status_code == 404 and missing.json() == {"message": "page not found"}


def test_curl_answers_json(daemon):
    # curl reads "http:/v1.24/x" as host "v1.24", path "/x"; spelled out here
    out = subprocess.run(["curl", "-sf", "--unix-socket", daemon.socket, "http://localhost/version"],
                         capture_output=True, check=True).stdout
    assert json.loads(out)["Os"] == "linux"
    out = subprocess.run(["curl", "-sf", "--unix-socket", daemon.socket, "http://localhost/v1.24/images/json"],
                         capture_output=True, check=True).stdout
    assert isinstance(json.loads(out), list)


def test_unknown_daemon_json_key_refused(tmp_path):
    d = make_daemon(tmp_path)
    (tmp_path / "daemon.json").write_text('{"no-such-option": 1}')
    res = subprocess.run([DOCKYARDD, "-H", d.host, "--data-root", d.data_root, "--exec-root", d.exec_root,
                          "--config-file", str(tmp_path / "daemon.json")], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 1
    assert "no-such-option" in res.stderr


def test_bad_value_and_flag_file_conflict_refused(tmp_path):
    d = make_daemon(tmp_path)
    conf = tmp_path / "daemon.json"
    conf.write_text('{"log-driver": "syslogz"}')
    res = subprocess.run([DOCKYARDD, "--config-file", str(conf), "--data-root", d.data_root],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "syslogz" in res.stderr
    conf.write_text(json.dumps({"data-root": d.data_root}))
    res = subprocess.run([DOCKYARDD, "--config-file", str(conf), "--data-root", d.data_root],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "both as a flag and in the configuration file" in res.stderr


def test_second_daemon_on_same_data_root_refused(fresh_daemon):
    fresh_daemon.start()
    other_sock = fresh_daemon.socket + "2"
    res = subprocess.run([DOCKYARDD, "-H", f"unix://{other_sock}", "--data-root", fresh_daemon.data_root,
                          "--exec-root", fresh_daemon.exec_root + "2",
                          "--config-file", str(fresh_daemon.base / "daemon.json")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "another dockyardd" in res.stderr
    assert not os.path.exists(other_sock)


def test_pidfile_and_graceful_sigterm(fresh_daemon):
    fresh_daemon.start()
    pidfile = fresh_daemon.base / "dockyardd.pid"
    assert int(pidfile.read_text()) == fresh_daemon.proc.pid
    assert fresh_daemon.stop(signal.SIGTERM) == 0
    assert not pidfile.exists()
    assert not os.path.exists(fresh_daemon.socket)


def test_socket_mode(daemon):
    assert os.stat(daemon.socket).st_mode & 0o777 == 0o660


def test_insecure_tcp_needs_explicit_flag(tmp_path):
    # a complete daemon set-up (config file, own bridge), so that the TCP guard is what stops it
    d = make_daemon(tmp_path, ["-H", "tcp://127.0.0.1:0"])
    try:
        with pytest.raises(RuntimeError, match="dockyardd exited with 1"):
            d.start()
        assert "refusing to serve tcp://127.0.0.1:0 without TLS: pass --tlsverify" in d.log()
    finally:
        if d.proc is not None and d.proc.poll() is None:  # the guard let it serve: stop it, drop its bridge
            d.teardown()
        else:
            shutil.rmtree(os.path.dirname(d.socket), ignore_errors=True)


def test_events_until_in_the_past_ends(daemon):
    api = daemon.api()
    started = time.time()
    resp = api.get(api.base_url + "/events", params={"since": "0", "until": str(int(time.time()) - 1)})
    assert resp.status_code == 200
    assert time.time() - started < 5
    bad = api.get(api.base_url + "/events", params={"filters": json.dumps({"nope": ["x"]})})
    assert bad.status_code == 400 and "invalid filter 'nope'" in bad.json()["message"]
