"""How much freed memory the C allocator may keep (glibc's malloc, under CPython's own allocator).

Big transfers (log reads, build contexts, image loads) pass through 1 MiB
buffers in worker threads. With glibc's defaults those buffers stop being
mmap'd after the first one is freed (the mmap threshold rises to the largest
size freed, up to 32 MiB), so later ones come from the heap and per-thread
arenas (up to 8 per core), whose freed pages are kept: the daemon's RSS
rose by tens of MiB after one benchmark run and stayed there. A fixed
threshold keeps every large buffer mmap'd (returned to the kernel when
freed), and two arenas bound what idle threads hold; CPython allocates
under the GIL, so more arenas buy nothing.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("dockyard.engine")

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
ARENA_MAX = 2


def bound_allocator_retention() -> None:
    """Set glibc's malloc to give large freed buffers back; a no-op under another C library."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_ARENA_MAX, ARENA_MAX)):
        if mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            log.debug("mallopt(%d, %d) refused", param, value)
