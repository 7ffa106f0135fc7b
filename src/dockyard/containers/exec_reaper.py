"""Runs ``runc exec --detach`` for a TTY exec and waits for the process it leaves behind.

runc only hands a PTY master over a console socket when it detaches, and a
detached process is re-parented to the nearest subreaper: this small
process is that subreaper, so its exit status is the exec's. Started as a
script (``python -I -S exec_reaper.py PIDFILE RUNC ARGS...``); it imports
nothing from dockyard so it starts fast.
"""

import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    pid_file, argv = sys.argv[1], sys.argv[2:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    runc = os.spawnv(os.P_NOWAIT, argv[0], argv)
    target = 0
    reaped: dict[int, int] = {}  # the process may end before runc does
    while target not in reaped:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 255
        reaped[pid] = os.waitstatus_to_exitcode(status)
        if pid == runc:
            if reaped[pid] != 0:
                return 255  # runc failed: its log says why
            with open(pid_file, encoding="ascii") as f:
                target = int(f.read().strip())
    code = reaped[target]
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
