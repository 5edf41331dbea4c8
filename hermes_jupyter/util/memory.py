"""Give freed memory back to the system once a turn has finished (glibc only; elsewhere nothing).

A turn's threads (its worker, its dispatcher, hermes' streaming thread) allocate and free
the copies of a growing conversation and one object per chunk; glibc keeps the freed memory
in its per-thread arenas, so the kernel's RSS grew by hundreds of kilobytes a turn though
Python held a few tens more (issue #13). ``malloc_trim`` returns the free pages of every
arena; it takes about a millisecond here and runs with the GIL released (ctypes).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
from collections.abc import Callable

log = logging.getLogger("hermes_jupyter")


@functools.cache
def _trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim  # absent from musl and other libcs
    except (OSError, AttributeError):
        return None
    return trim


def give_back() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    trim = _trim()
    if trim is None:
        return False
    try:
        trim(0)
    except Exception:  # never let housekeeping break a turn
        log.debug("malloc_trim failed", exc_info=True)
        return False
    return True
