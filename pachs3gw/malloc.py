"""glibc malloc settings that keep a streaming server's RSS flat.

Bodies move as ~1 MiB ``bytes`` objects. glibc serves those with mmap at
first, but raises its mmap threshold after each such free (up to 32 MiB),
after which they come from heap arenas that fragment and are not returned
to the system: ten parallel downloads then held twice the memory they use.
A fixed threshold turns that off; capping arenas stops each worker thread
from getting its own. Equivalent to ``MALLOC_MMAP_THRESHOLD_=262144
MALLOC_ARENA_MAX=2`` in the environment, but done by the process itself so
every way of starting it gets it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 256 * 1024
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Apply the settings; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_ARENA_MAX, ARENA_MAX)
    )
