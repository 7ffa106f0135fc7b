"""Live restore under stress: `kill -9` of dockyardd at any moment loses no log line and duplicates none."""

from __future__ import annotations

import random
import signal
import time

# numbered lines in bursts of 50 (about 7 s in all, so every kill lands while they are written), some in two writes (a partial line then its end),
# some on stderr, so the copier is caught mid-line, mid-block and with pieces held
WRITER = ('i=0; while [ $i -lt {n} ]; do '
          'if [ $((i % 97)) = 0 ]; then printf "$i"; echo; '
          'elif [ $((i % 13)) = 0 ]; then echo $i >&2; '
          'else echo $i; fi; i=$((i+1)); [ $((i % 50)) = 0 ] && usleep 5000; done; usleep 200000; echo end; sleep 1000')


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split() if x != "end"]


def test_kill_9_cycles_lose_and_duplicate_no_line(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    rnd = random.Random(4)
    n = 60000
    try:
        d.cli("load", "-i", busybox_tar.path)
        d.cli("run", "-d", "--name", "numbers", "busybox", "sh", "-c", WRITER.format(n=n))
        d.cli("run", "-d", "--name", "rotating", "--log-opt", "max-size=64k", "--log-opt", "max-file=100",
              "busybox", "sh", "-c", WRITER.format(n=n))
        for _ in range(6):
            time.sleep(rnd.uniform(0.05, 0.6))
            d.stop(signal.SIGKILL)
            time.sleep(rnd.uniform(0.0, 0.3))
            d.start()
        deadline = time.monotonic() + 120
        for name in ("numbers", "rotating"):
            while True:
                res = d.cli("logs", "--tail", "1", name)
                if res.stdout_text == "end\n" or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
        res = d.cli("logs", "numbers")
        got = sorted(_numbers(res.stdout_text) + _numbers(res.stderr_text))
        assert got == list(range(n)), _diff(got, n)
        assert all(int(x) % 13 == 0 and int(x) % 97 for x in res.stderr_text.split())
        res = d.cli("logs", "rotating")
        got = sorted(_numbers(res.stdout_text) + _numbers(res.stderr_text))
        assert got == list(range(n)), _diff(got, n)
        d.cli("rm", "-f", "numbers", "rotating")
    finally:
        ids = d.cli("ps", "-aq", check=False).stdout_text.split() if d.proc else []
        if ids:
            d.cli("rm", "-f", *ids, check=False)


def _diff(got: list[int], n: int) -> str:
    seen: dict[int, int] = {}
    for x in got:
        seen[x] = seen.get(x, 0) + 1
    missing = [i for i in range(n) if i not in seen]
    twice = [x for x, k in seen.items() if k > 1]
    return f"{len(got)} lines; missing {missing[:20]} ({len(missing)}); duplicated {twice[:20]} ({len(twice)})"
