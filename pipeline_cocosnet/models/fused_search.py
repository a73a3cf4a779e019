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

Importing this module compiles nothing; the first call compiles the kernels for its dtype (a few
seconds) and caches them on disk next to this file (``__pycache__``) when that is writable.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch

try:  # an optional speed-up: without Numba the tensor path runs
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; kept importable without it
    numba = None


#: one parallel launch at a time: each already uses every core, and Numba's fallback thread pool
#: ("workqueue", where neither TBB nor OpenMP is found) aborts on launches from two threads at once
_LAUNCH = threading.Lock()


def available(theta: torch.Tensor, offsets: torch.Tensor) -> bool:
    """Whether the fused step can run these inputs (CPU, float32/float64, no autograd, Numba installed)."""
    return (
        numba is not None
        and theta.device.type == "cpu"
        and theta.dtype in (torch.float32, torch.float64)
        and offsets.dtype == theta.dtype
        and not (torch.is_grad_enabled() and (theta.requires_grad or offsets.requires_grad))
    )


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)
    _jit_parallel = numba.njit(cache=True, nogil=True, parallel=True)

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
    def _score(query, table, p, candidates, first, count, scores):  # pragma: no cover - compiled
        """scores[first + t] = Σ_c query[p, c] · table[candidates[first + t], c] for t < count (any summation order)."""
        zero = query[p, 0] - query[p, 0]
        for t in range(first, first + count):
            q = candidates[t]
            total = zero
            for c in range(query.shape[1]):  # from 0: C = 16, 32 … is then whole vectors
                total += query[p, c] * table[q, c]
            scores[t] = total

    @_jit
    def _row_of(q, width):  # pragma: no cover - compiled
        """q // w through a float64 division (exact for any flat index below 2^52; an integer division
        costs several times more, and this step takes 3K of them per pixel)."""
        return int(q / width)

    @_jit
    def _keep_best(scores, rank, ties, kept):  # pragma: no cover - compiled
        """kept = the positions of the len(kept) largest scores, descending; equal scores: lower position first.

        Branch-free ranking (candidates arrive in no useful order, so a sort mispredicts):
        rank_t = #{u : s_u > s_t}; equal scores share a rank and take its slots in position order.
        """
        k, n = kept.shape[0], scores.shape[0]
        for t in range(n):
            rank[t] = 0
            ties[t] = 0
        for u in range(n):
            value = scores[u]
            for t in range(n):
                rank[t] += value > scores[t]
        for t in range(n):
            slot = rank[t] + ties[rank[t]]
            ties[rank[t]] += 1
            if slot < k:
                kept[slot] = t

    @_jit
    def _softmax_of_kept(scores, kept, temperature, underflow, out):  # pragma: no cover - compiled
        """out_k = softmax(scores / τ)[kept_k], kept[0] being the largest score; in the scores' dtype.

        Terms whose exponent s_t/τ − max/τ is below ``underflow`` (where exp is exactly 0 in the
        dtype) are skipped.
        """
        zero = scores[0] - scores[0]
        top = scores[kept[0]] / temperature
        total = zero
        for t in range(scores.shape[0]):
            exponent = scores[t] / temperature - top
            if exponent > underflow:
                total += math.exp(exponent)
        for k in range(kept.shape[0]):
            out[k] = math.exp(scores[kept[k]] / temperature - top) / total

    @_jit_parallel
    def _first_half(theta, phi, offsets, vertical, h, w, rows, cols, out_index, out_scores):  # pragma: no cover
        """Propagate fractional offsets along one axis, score the 3K, keep the best K (indices + scores).

        theta, phi: (B·h·w)×C pixel tables; offsets: (B·h·w)×2×K; rows, cols: 0..h−1 and 0..w in
        the offsets' dtype (the index arithmetic stays in that dtype, as in ``offsets_to_indices``).
        Writes out_index ((B·h·w)×K, int64: flat indices within the item) and out_scores.
        """
        k = offsets.shape[2]
        zero, last_row, last_col, width = rows[0], rows[h - 1], cols[w - 1], cols[w]
        for bi in numba.prange(offsets.shape[0] // w):
            b, i = bi // h, bi % h
            base = b * h * w
            scores = np.empty(3 * k, dtype=theta.dtype)
            index = np.empty(3 * k, dtype=np.int64)
            kept = np.empty(k, dtype=np.int64)
            rank = np.empty(3 * k, dtype=np.int32)
            ties = np.empty(3 * k, dtype=np.int32)
            row0 = rows[i]
            for j in range(w):
                p = base + i * w + j
                col0 = cols[j]
                for part in range(3):  # the previous neighbour's K, the own K, the next neighbour's K
                    si, sj = i, j
                    if part != 1:
                        if vertical:
                            si += part - 1
                        else:
                            sj += part - 1
                    if 0 <= si < h and 0 <= sj < w:
                        source = offsets[base + si * w + sj]
                        for t in range(k):
                            r = min(max(row0 + source[0, t], zero), last_row)
                            c = min(max(col0 + source[1, t], zero), last_col)
                            index[part * k + t] = int(r * width + c)
                    else:  # a border pixel's missing neighbour: the zero offset, i.e. its own position
                        for t in range(k):
                            index[part * k + t] = i * w + j
                for t in range(3 * k):
                    index[t] += base
                _score(theta, phi, p, index, 0, 3 * k, scores)
                _keep_best(scores, rank, ties, kept)
                for t in range(k):
                    out_index[p, t] = index[kept[t]] - base
                    out_scores[p, t] = scores[kept[t]]

    @_jit_parallel
    def _second_half(theta, phi, index, kept_scores, vertical, h, w, temperature, underflow, out_offsets, out_probs):  # pragma: no cover
        """Propagate the kept integer indices along the other axis, score the 2K new, keep the best K.

        The previous neighbour's match q lands one exemplar step further (q + step unless on the
        exemplar's last row/column), the next neighbour's one step back; a border pixel's missing
        neighbour is the zero offset (its own position). Writes integer offsets ((B·h·w)×2×K) and
        the kept candidates' probabilities ((B·h·w)×K, softmax over all 3K at τ).
        """
        k = index.shape[1]
        width = float(w)
        for bi in numba.prange(index.shape[0] // w):
            b, i = bi // h, bi % h
            base = b * h * w
            scores = np.empty(3 * k, dtype=theta.dtype)
            candidates = np.empty(3 * k, dtype=np.int64)
            kept = np.empty(k, dtype=np.int64)
            rank = np.empty(3 * k, dtype=np.int32)
            ties = np.empty(3 * k, dtype=np.int32)
            probs = np.empty(k, dtype=theta.dtype)
            for j in range(w):
                p = base + i * w + j
                for t in range(k):
                    candidates[k + t] = base + index[p, t]
                    scores[k + t] = kept_scores[p, t]
                for part in (0, 2):
                    forward = part == 0  # from the previous neighbour, moved one step further
                    si, sj = i, j
                    if vertical:
                        si += -1 if forward else 1
                    else:
                        sj += -1 if forward else 1
                    if 0 <= si < h and 0 <= sj < w:
                        source = base + si * w + sj
                        for t in range(k):
                            q = index[source, t]
                            row = _row_of(q, width)
                            if vertical:
                                coordinate, last, step = row, h - 1, w
                            else:
                                coordinate, last, step = q - row * w, w - 1, 1
                            if forward and coordinate < last:
                                q += step
                            elif not forward and coordinate > 0:
                                q -= step
                            candidates[part * k + t] = base + q
                    else:
                        for t in range(k):
                            candidates[part * k + t] = p
                _score(theta, phi, p, candidates, 0, k, scores)
                _score(theta, phi, p, candidates, 2 * k, k, scores)
                _keep_best(scores, rank, ties, kept)
                _softmax_of_kept(scores, kept, temperature, underflow, probs)
                for t in range(k):
                    q = candidates[kept[t]] - base
                    row = _row_of(q, width)
                    out_offsets[p, 0, t] = row - i
                    out_offsets[p, 1, t] = q - row * w - j
                    out_probs[p, t] = probs[t]


def fused_search(
    theta: torch.Tensor, phi: torch.Tensor, offsets: torch.Tensor, horizontal_first: bool, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PatchMatch step (propagate along one axis and keep the best K, then along the other), fused.

    theta, phi: B×C×h×w matching features (float32/float64, any memory format); offsets: B×h×w×2×K
    in the same dtype. Returns the kept integer offsets B×h×w×2×K and their probabilities B×h×w×K
    (softmax over the 3K at temperature τ, descending), as ``PatchMatch.search``. The caller
    checks :func:`available` and that every flat index is exact in the dtype.
    """
    b, c, h, w = theta.shape
    k = offsets.shape[-1]
    dtype = theta.dtype
    query = theta.detach().permute(0, 2, 3, 1).reshape(b * h * w, c).contiguous().numpy()  # no copy if channels-last
    table = phi.detach().permute(0, 2, 3, 1).reshape(b * h * w, c).contiguous().numpy()
    rows, cols = np.arange(h, dtype=query.dtype), np.arange(w + 1, dtype=query.dtype)
    index = np.empty((b * h * w, k), dtype=np.int64)
    kept_scores = np.empty((b * h * w, k), dtype=query.dtype)
    out_offsets = torch.empty(b, h, w, 2, k, dtype=dtype)
    out_probs = torch.empty(b, h, w, k, dtype=dtype)
    source = offsets.detach().reshape(b * h * w, 2, k).contiguous().numpy()
    tau = query.dtype.type(temperature)
    # below this exponent exp() rounds to exactly 0 in the dtype (half the smallest subnormal)
    underflow = query.dtype.type(np.log(np.finfo(query.dtype).smallest_subnormal) - 1)
    with _LAUNCH:
        _first_half(query, table, source, not horizontal_first, h, w, rows, cols, index, kept_scores)
        _second_half(
            query, table, index, kept_scores, horizontal_first, h, w, tau, underflow,
            out_offsets.view(b * h * w, 2, k).numpy(), out_probs.view(b * h * w, k).numpy(),
        )
    return out_offsets, out_probs


__all__ = ["available", "fused_search"]
