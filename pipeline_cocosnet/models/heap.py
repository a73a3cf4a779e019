"""Giving the C heap's freed pages back to the OS on CPU (glibc ``malloc_trim``; a no-op elsewhere).

Tensors under glibc's dynamic mmap threshold (up to 32 MiB) come from the heap, whose freed pages the
process keeps: after the 512² PatchMatch level that was ~190 MiB of the float32 peak, which the
translator then added to (docs/cpu-speed.md). The pipeline calls :func:`before_translator` and, at the
end of a CPU call, :func:`return_freed_memory`. Torch-free (ctypes only).
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


def before_translator(element_size: int) -> None:
    """Between the matching and the translator on CPU: return the freed heap where the peak is the large one.

    element_size: bytes per element of the translator's maps. Float32/float64 (4+ bytes) return it:
    ~190 MiB of the 512² float32 peak. bf16/fp16 keep it for the translator to reuse: faulting the
    pages in again cost their translator 43 ms at 256² and 148 ms at 512² (0.21 → 0.26 s, 0.88 → 1.02 s),
    for a peak ~100 MiB lower that stays below float32's anyway (512²: 1484 vs ~1600 MiB; ab.py,
    docs/cpu-speed.md).
    """
    if element_size >= 4:
        return_freed_memory()


__all__ = ["before_translator", "return_freed_memory"]
