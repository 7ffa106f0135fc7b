"""docker commit side by side with the reference dockerd (issue 15): any container commits (created,
exited, running with or without pause), and ``--change`` is applied, expanded and refused as dockerd does."""

from __future__ import annotations

import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd

CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "ExposedPorts", "Labels", "User", "WorkingDir", "Volumes", "OnBuild",
               "Healthcheck", "StopSignal")


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def _config(api, image_id: str) -> dict:
    config = api.inspect_image(image_id)["Config"]
    return {k: config.get(k) or None for k in CONFIG_KEYS}


def test_commit_created_exited_and_running_containers(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        rows = []
        c = api.create_container("busybox", ["sh", "-c", "echo made > /made; sleep 1000"], environment=["A=1"],
                                 name="tocommit")
        try:
            for pause in (True, False):  # a created container: pause does not apply
                image = api.commit(c, repository="committed", tag="created", pause=pause,
                                   changes=["ENV B=$A:2 PATH=$PATH:/x", 'CMD ["cat", "/made"]'])
                rows.append(_config(api, image["Id"]))
            api.start(c)
            image = api.commit(c, repository="committed", tag="running")  # paused for the copy
            assert api.inspect_container(c)["State"]["Status"] == "running"
            api.kill(c)
            image = api.commit(c, repository="committed", tag="exited", changes=["EXPOSE 80-81 53/udp"])
            rows.append(_config(api, image["Id"]))
            # the exited container's files are in the image
            out = e.cli("run", "--rm", "committed:exited", "cat", "/made").stdout_text
            rows.append(out)
        finally:
            cleanup(e, "tocommit")
            e.cli("rmi", "committed:created", "committed:running", "committed:exited", check=False)
        seen[which] = rows
    assert seen["dockyard"] == seen["dockerd"]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/x" in seen["dockerd"][0]["Env"]
    assert seen["dockerd"][3] == "made\n"


CHANGES = [
    ["ENV P=$PATH:/x Q=${NOPE:-dflt} R=$A", "LABEL \"x y\"=z a=$A", "USER u$A", "WORKDIR rel", "WORKDIR $A/b"],
    ["ENV A B C", "EXPOSE 80 90/udp", 'VOLUME ["/v1", "/v2"]', "VOLUME /v3 /v4"],
    ["HEALTHCHECK --interval=5s --retries=3 CMD true", "ONBUILD run echo hi", "ENTRYPOINT [\"sh\"]"],
    ["HEALTHCHECK NONE"],
    ["CMD echo $PATH"],
]
BAD_CHANGES = [["STOPSIGNAL 9"], ["FROM x"], ["ADD . /"], ["MAINTAINER me"], ["ENV"], ["ENV a"], ["LABEL a"],
               ["USER"], ["ONBUILD FROM x"], ["EXPOSE 80/xyz"], ["SHELL [\"sh\"]"], ["BOGUS x"]]


def test_commit_changes_side_by_side(engines) -> None:
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        c = api.create_container("busybox", "true", environment=["A=1"], name="changes")
        try:
            rows = []
            for changes in CHANGES + BAD_CHANGES:
                status, body = outcome(lambda: api.commit(c, changes=changes))
                rows.append((status, _config(api, body["Id"]) if status == 200 else body))
                if status == 200:
                    api.remove_image(body["Id"])
        finally:
            cleanup(e, "changes")
        seen[which] = rows
    for changes, ours, ref in zip(CHANGES + BAD_CHANGES, seen["dockyard"], seen["dockerd"]):
        assert ours == ref, changes
    assert [s for s, _ in seen["dockerd"]] == [200] * len(CHANGES) + [400] * len(BAD_CHANGES)
