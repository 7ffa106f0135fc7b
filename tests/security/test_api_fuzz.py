"""Schemathesis over the Engine API spec at API 1.41 and 1.50: no request answers 5xx.

Every operation of the spec gets a bounded number of generated requests, valid by
the spec and invalid by it, against a daemon of its own over its unix socket
(docker-py's adapter mounted on a requests session). Hypothesis is derandomized, so a run is
repeatable. The only operations left out are those that would reach outside the
machine, change the host's networking, or hold the connection forever:
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest
import requests
import yaml
from docker.transport import UnixHTTPAdapter

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import HypothesisException  # noqa: E402

from conftest import make_daemon  # noqa: E402

SPEC = Path(__file__).resolve().parents[3] / "shared" / "api" / "docker-engine-v1.50.yaml"
VERSIONS = ("1.41", "1.50")
EXAMPLES = 10  # per operation, per generation mode, per version
BUDGET = 420.0  # seconds for the whole run; past it the remaining operations are reported untried
CALL_TIMEOUT = 20.0

SKIPPED = {
    "GET /events": "streams until the client goes (without `until`)",
    "POST /containers/{id}/attach": "hijacks the connection for as long as the container runs",
    "GET /containers/{id}/attach/ws": "a websocket: held open for as long as the container runs",
    "POST /session": "hijacks the connection (BuildKit session)",
    "POST /images/create": "pulls from a registry (fromImage) or downloads a URL (fromSrc)",
    "POST /images/{name}/push": "pushes to a registry",
    "GET /images/search": "asks a registry",
    "POST /auth": "logs in to a registry",
    "GET /distribution/{name}/json": "asks a registry",
    "POST /plugins/pull": "pulls from a registry",
    "POST /plugins/{name}/upgrade": "pulls from a registry",
    "POST /build": "remote= fetches a URL or a git repository",
    "POST /networks/create": "creates host bridges, routes and iptables rules for arbitrary subnets",
}

# dockyard has no swarm mode and answers these endpoints as dockerd does on a node outside a
# swarm: 503 with one of dockerd's two messages, the one 5xx allowed (docker-py counts on it)
SWARM_RESOURCES = ("/swarm", "/services", "/tasks", "/nodes", "/secrets", "/configs")
SWARM_ANSWERS = {
    "This node is not part of a swarm",
    "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this "
    "node to swarm and try again.",
}


def _dockerd_swarm_answer(path: str, res: requests.Response) -> bool:
    if res.status_code != 503 or not path.startswith(SWARM_RESOURCES):
        return False
    try:
        return res.json().get("message") in SWARM_ANSWERS
    except ValueError:
        return False


@schemathesis.serializer("application/x-tar")
def _tar_bytes(ctx, value) -> bytes:
    """The spec's archives are opaque strings: sent as they are, which the daemon must refuse cleanly."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory):
    d = make_daemon(tmp_path_factory.mktemp("fuzz"))
    d.start()
    yield d
    d.teardown()


def _operations() -> list:
    raw = yaml.safe_load(SPEC.read_text())
    schema = schemathesis.openapi.from_dict(raw)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.timeout(900)
def test_no_server_errors(fuzz_daemon):
    if not SPEC.exists():
        pytest.skip(f"the Engine API spec is not at {SPEC}")
    # schemathesis joins URLs as http(s) ones: a plain http:// prefix carried over the unix socket
    session = requests.Session()
    session.mount("http://dockyard/", UnixHTTPAdapter("http+unix://" + fuzz_daemon.socket))
    operations = [op for op in _operations() if f"{op.method.upper()} {op.path}" not in SKIPPED]
    failures: list[str] = []
    untried: list[str] = []
    deadline = time.monotonic() + BUDGET
    statuses: collections.Counter[int] = collections.Counter()
    for version in VERSIONS:
        for op in operations:
            label = f"{op.method.upper()} /v{version}{op.path}"
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                if time.monotonic() > deadline:
                    untried.append(f"{label} ({mode.value})")
                    continue

                @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(op.as_strategy(generation_mode=mode))
                def run(case) -> None:
                    try:
                        res = case.call(base_url=f"http://dockyard/v{version}", session=session, timeout=CALL_TIMEOUT)
                    except requests.Timeout:
                        failures.append(f"{label}: no answer in {CALL_TIMEOUT}s\n  {case.as_curl_command()}")
                        return
                    except requests.ConnectionError as e:
                        failures.append(f"{label}: connection failed: {e}\n  {case.as_curl_command()}")
                        return
                    statuses[res.status_code] += 1
                    if res.status_code >= 500 and not _dockerd_swarm_answer(op.path, res):
                        failures.append(f"{label}: {res.status_code} {res.text[:300]}\n  {case.as_curl_command()}")

                try:
                    run()
                except HypothesisException:
                    pass  # nothing can be generated for this mode (e.g. no invalid form of a bodiless GET)
    print(f"{len(operations)} operations x {len(VERSIONS)} versions, answers: {dict(statuses)}, untried: {untried}")
    assert fuzz_daemon.proc is not None and fuzz_daemon.proc.poll() is None, "the daemon died"
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])
    assert statuses[200] and statuses[400] and statuses[404], statuses  # it did reach the daemon's handlers
    assert len(untried) < len(operations) // 4, f"too little of the spec tried in {BUDGET}s: {untried}"
