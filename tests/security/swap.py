"""A static ``swap`` program for race tests: inside a container it exchanges two paths in a loop.

``swap A B [SECONDS]`` calls renameat2(A, B, RENAME_EXCHANGE) as fast as it can, for SECONDS (default 30)
or until killed, so a path the daemon resolved a moment ago may now be the other one (a directory and a
symlink to ``/``, typically). Built from C at test time: busybox has no RENAME_EXCHANGE.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

_SOURCE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: swap A B [SECONDS]\n"); return 2; }
    time_t end = time(NULL) + (argc > 3 ? atoi(argv[3]) : 30);
    unsigned long n = 0;
    while (time(NULL) < end) {
        for (int i = 0; i < 4096; i++) {
            if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) != 0) {
                perror("renameat2");
                return 1;
            }
            n++;
        }
    }
    printf("%lu\n", n);
    return 0;
}
"""

_built: dict[str, str] = {}


def swapper_binary() -> str:
    """Path of the static ``swap`` binary, compiled once per test process."""
    if "path" not in _built:
        d = tempfile.mkdtemp(prefix="dyswap")
        src = os.path.join(d, "swap.c")
        with open(src, "w") as f:
            f.write(_SOURCE)
        out = os.path.join(d, "swap")
        subprocess.run(["gcc", "-O2", "-static", "-o", out, src], check=True, capture_output=True)
        _built["path"] = out
    return _built["path"]
