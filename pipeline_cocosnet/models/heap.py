"""Giving the C heap's freed pages back to the OS on CPU (glibc ``malloc_trim``; a no-op elsewhere).

Tensors under glibc's dynamic mmap threshold (up to 32 MiB) come from the heap, whose freed pages the
process keeps: after the 512² PatchMatch level that was ~190 MiB of the float32 peak, which the
translator then added to (docs/cpu-speed.md). The pipeline calls :func:`return_freed_memory` before the
translator and at the end of a CPU call. Torch-free (ctypes only).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """glibc, or None where the C library is another (musl, macOS, Windows: nothing to do there)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def return_freed_memory() -> None:
    """Give the heap's free pages back to the OS (``malloc_trim(0)``; a few milliseconds)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


__all__ = ["return_freed_memory"]
