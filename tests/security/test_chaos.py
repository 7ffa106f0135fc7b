"""A short chaos round in ``make test``: clients in threads while the daemon is kill -9ed (see chaos.py)."""

from __future__ import annotations

from chaos import RSS_BOUND_MIB, run_chaos


def test_chaos_short_round(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    result = run_chaos(d, seconds=70, workers=4, kill_every=15)
    assert result["kills"] >= 3, result
    assert result["calls"] > 20, result  # the workers did work between the kills
    assert result["hangs"] == [], result
    assert result["server_errors"] == [], result
    assert result["tracebacks"] == [], result
    assert result["runc_disagreements"] == [], result
    assert result["leaks"] == {}, result
    assert result["rss_mib"] < RSS_BOUND_MIB, result
