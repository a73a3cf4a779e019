"""One PatchMatch search step fused per pixel, for CPU inference (docs/architecture.md §7).

:meth:`PatchMatch.search <pipeline_cocosnet.models.patchmatch.PatchMatch.search>` written as tensor
operations streams every intermediate (3K candidate offsets, their indices, the 3K scores, the
softmax, the top-K positions) through memory once per operation: at 512² that is ~0.75 s a step on
a 2-core CPU, of which the useful scoring is a small part. Here each pixel's candidates are built,
scored, ranked and normalised while they sit in registers/L1, compiled by Numba (a wheel with its
own LLVM: no system compiler needed, so it runs on a CPU Space as it is). The plain equations, the
same ones as the tensor path, for a pixel p with candidates t = 1..3K along one axis:

    index_t = ⌊clamp(r + Δr_t, 0, h−1)·w + clamp(c + Δc_t, 0, w−1)⌋   (in the offsets' dtype)
    s_t     = Σ_c θ[c, p] · φ[c, index_t]
    keep    = the K largest s_t, in descending order (equal scores: the earlier candidate first)
    prob_k  = exp(s_k/τ − max_t s_t/τ) / Σ_t exp(s_t/τ − max_t s_t/τ)

The second half-step uses the integer shortcut of ``neighbour_indices`` (the neighbours' kept
indices shifted by one pixel, the own K keeping their scores). ``tests/test_fast_paths.py`` checks
this against the tensor path on every CPU.

The kernels live in ``search_kernels`` and are imported on the first fused step (Numba is imported
then, not with the package); they compile on their first call for a dtype (a few seconds) and are
cached on disk.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from types import ModuleType

import numpy as np
import torch


#: one parallel launch at a time: each already uses every core, and Numba's fallback thread pool
#: ("workqueue", where neither TBB nor OpenMP is found) aborts on launches from two threads at once
_LAUNCH = threading.Lock()


@functools.cache
def numba_installed() -> bool:
    """Whether Numba can be imported (without importing it). Without it the tensor path runs."""
    return importlib.util.find_spec("numba") is not None


def _kernels() -> ModuleType:
    """The compiled kernels' module (imports Numba on first use)."""
    from . import search_kernels

    return search_kernels


def available(theta: torch.Tensor, offsets: torch.Tensor) -> bool:
    """Whether the fused step can run these inputs (CPU, float32/float64, no autograd, Numba installed)."""
    return (
        theta.device.type == "cpu"
        and theta.dtype in (torch.float32, torch.float64)
        and offsets.dtype == theta.dtype
        and not (torch.is_grad_enabled() and (theta.requires_grad or offsets.requires_grad))
        and numba_installed()
    )



def fused_search(
    theta: torch.Tensor,
    phi: torch.Tensor,
    offsets: torch.Tensor,
    horizontal_first: bool,
    temperature: float,
    workspace: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PatchMatch step (propagate along one axis and keep the best K, then along the other), fused.

    theta, phi: B×C×h×w matching features (float32/float64, any memory format); offsets: B×h×w×2×K
    in the same dtype. Returns the kept integer offsets B×h×w×2×K and their probabilities B×h×w×K
    (softmax over the 3K at temperature τ, descending), as ``PatchMatch.search``. The caller
    checks :func:`available` and that every flat index is exact in the dtype.

    ``workspace``: a dict that the steps of one level share. The step's scratch and its two outputs
    are then kept there and reused by the next step with the same shapes (the outputs: and the same
    propagation order), which overwrites them; fresh tensors (80 MiB a step at 512²) cost ~20 000
    page faults. Only for a caller that is done with a step's outputs before the next step.
    """
    b, c, h, w = theta.shape
    k = offsets.shape[-1]
    dtype = theta.dtype
    query = theta.detach().permute(0, 2, 3, 1).reshape(b * h * w, c).contiguous().numpy()  # no copy if channels-last
    table = phi.detach().permute(0, 2, 3, 1).reshape(b * h * w, c).contiguous().numpy()
    rows, cols = np.arange(h, dtype=query.dtype), np.arange(w + 1, dtype=query.dtype)

    def buffer(name: str, shape: tuple[int, ...], dtype: torch.dtype, output: bool = False) -> torch.Tensor:
        # from torch's allocator, not np.empty: numpy asks for transparent huge pages above 4 MiB,
        # and their zeroing and compaction cost 40–80 ms a 512² step here (docs/cpu-speed.md)
        if workspace is None:
            return torch.empty(shape, dtype=dtype)
        # outputs per propagation order: a batch split by order runs both before either is consumed
        key = (name, shape, dtype, horizontal_first if output else None)
        if key not in workspace:
            workspace[key] = torch.empty(shape, dtype=dtype)
        return workspace[key]

    # flat indices within an item: int32 while h·w fits (half the scratch's memory traffic)
    index = buffer("index", (b * h * w, k), torch.int32 if h * w < 2**31 else torch.int64).numpy()
    kept_scores = buffer("kept scores", (b * h * w, k), dtype).numpy()
    out_offsets = buffer("offsets", (b, h, w, 2, k), dtype, output=True)
    out_probs = buffer("probabilities", (b, h, w, k), dtype, output=True)
    source = offsets.detach().reshape(b * h * w, 2, k).contiguous().numpy()
    tau = query.dtype.type(temperature)
    # below this exponent exp() rounds to exactly 0 in the dtype (half the smallest subnormal)
    underflow = query.dtype.type(np.log(np.finfo(query.dtype).smallest_subnormal) - 1)
    kernels = _kernels()
    threads = torch.get_num_threads()
    with _LAUNCH:
        # Numba's OpenMP pool shares the runtime with torch's: a launch sets the process-wide thread
        # count to Numba's own (all cores), which overrode torch.set_num_threads / OMP_NUM_THREADS
        # for every later torch operation (and made a resumed training run differ from an
        # uninterrupted one). Launch with torch's count and put it back.
        kernels.numba.set_num_threads(min(threads, kernels.numba.config.NUMBA_NUM_THREADS))
        kernels.first_half(query, table, source, not horizontal_first, h, w, rows, cols, index, kept_scores)
        kernels.second_half(
            query, table, index, kept_scores, horizontal_first, h, w, tau, underflow,
            out_offsets.view(b * h * w, 2, k).numpy(), out_probs.view(b * h * w, k).numpy(),
        )
        torch.set_num_threads(threads)
    return out_offsets, out_probs


__all__ = ["available", "fused_search"]
