"""A daemon that refuses its configuration leaves nothing on the host (issue 12, finding 21).

A refused TLS file, a tcp:// host without TLS, a bad bip or log option used to
be found only after the engine had made the default bridge and its iptables
rules (and the data root). Now the whole configuration is checked first:
dockyardd exits non-zero with no bridge, no rule naming it, no socket and no
data root left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import DOCKYARDD, _drop_rules

CASES = {
    "bip-network-address": (["--bip", "10.213.0.0/16"], {}),
    "bip-no-room": ([], {"bip": "10.213.0.1/32"}),
    "bip-ipv6": (["--bip", "fd00:213::1/64"], {}),
    "log-opt": (["--log-opt", "max-size=lots"], {}),
    "unknown-key": ([], {"no-such-option": True}),
    "tls-file-missing": (["-H", "tcp://127.0.0.1:23761", "--tlsverify", "--tlscert", "/nonexistent/cert.pem"], {}),
    "tcp-without-tls": (["-H", "tcp://127.0.0.1:23762"], {}),
    "bad-port": (["-H", "tcp://127.0.0.1:notaport", "--allow-insecure-tcp"], {}),
}


def _rules_naming(word: str) -> list[str]:
    out = []
    for table in ("filter", "nat", "raw"):
        text = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        out += [line for line in text.splitlines() if word in line.split()]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_config_touches_nothing(tmp_path: Path, case: str):
    args, file_values = CASES[case]
    bridge = "dy" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:10]
    sock = tmp_path / "run" / "d.sock"
    data_root = tmp_path / "data"
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"bridge": bridge, **file_values}))
    try:
        res = subprocess.run([DOCKYARDD, "-H", f"unix://{sock}", "--data-root", str(data_root),
                              "--exec-root", str(tmp_path / "exec"), "--pidfile", str(tmp_path / "d.pid"),
                              "--config-file", str(config), *args],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode != 0, res.stderr
        assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0, \
            f"bridge {bridge} made:\n{res.stderr}"
        assert _rules_naming(bridge) == []
        assert not os.path.lexists(sock)
        assert not data_root.exists()
        assert "Traceback" not in res.stderr, res.stderr
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        _drop_rules(bridge)
