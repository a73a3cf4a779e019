"""How a CPU forward's large tensors get their memory (glibc only; nothing elsewhere).

Under glibc's defaults a tensor above the mmap threshold (at most 32 MiB: every 512² feature map of
64+ channels) is a fresh ``mmap``, and its ``free`` unmaps it: the next such tensor faults in and
zero-fills every 4 KiB page again. A 512² float32 forward did that ~3.5 million times (14 GB of
zeroed pages, ~7 s of kernel time on a 2-core host; `/usr/bin/time`, issue 24). Inside
:func:`reuse_freed_memory` large tensors come from the heap instead and freed ones are reused as they
are; on the way out (and at the stage boundaries the caller marks with :func:`return_freed_memory`) the
heap's free pages go back to the OS, so the process does not keep the peak.

Torch-free (ctypes only).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
import threading
from typing import Iterator

#: mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
#: on the way out: what glibc's dynamic thresholds settle at in a torch process (once a tensor of 32 MiB
#: or more was freed: mmap above 32 MiB, trim the heap's top above twice that), set explicitly because
#: any mallopt call switches the dynamic adjustment off; and glibc's default mmap count
_MMAP_THRESHOLD, _TRIM_THRESHOLD, _MMAP_MAX = 32 * 2**20, 64 * 2**20, 65536

_lock = threading.Lock()
_depth = 0


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """glibc, or None where the C library is another (musl, macOS, Windows: the functions are no-ops there)."""
    if platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return libc if all(hasattr(libc, f) for f in ("mallopt", "malloc_trim")) else None


def return_freed_memory() -> None:
    """Give the heap's free pages back to the OS (glibc ``malloc_trim(0)``; a few milliseconds)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Large allocations from the heap, freed memory kept for the next tensor, while inside; trimmed on exit.

    Process-wide (malloc has one configuration); nested and concurrent uses share one setting, the
    last one out restores the thresholds and returns the free pages. A no-op without glibc.
    """
    global _depth
    libc = _libc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # (an int: the largest glibc takes)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_MAX, _MMAP_MAX)
                libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
                libc.malloc_trim(0)


__all__ = ["return_freed_memory", "reuse_freed_memory"]
