"""Keep freed host memory in the process for reuse instead of handing it back to the OS (glibc).

glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on free, so each of the
generator's large activations costs tens of thousands of page faults and a zero-fill by the
kernel, every time (docs/benchmarks.md has the figures). With mmap switched off and trimming
raised to 2 GiB, freed blocks go back to malloc's heap and the next iteration reuses them. Values
are unchanged; the resident memory stays near the run's peak instead of shrinking between steps.

Only CPU runs turn it on (runtime/startup.py): there the large tensors live in host memory and
the gain was measured; a GPU run's live on the GPU, and its host memory is left as glibc keeps it.
Set DFAD_KEEP_FREED_MEMORY=0 to keep glibc's defaults. Elsewhere (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for a process that frees and re-allocates the same large blocks.

    Returns whether glibc accepted the settings. Safe to call more than once.
    """
    if os.environ.get("DFAD_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no C library by that name, or one without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
