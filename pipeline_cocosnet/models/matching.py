"""Matching primitives shared by the dense and PatchMatch levels.

Conventions: matching features θ (structure side) and φ (exemplar side) are
B×C×h×w with unit-norm, zero-mean channel vectors (docs/architecture.md §4). A *candidate* is an
offset (Δrow, Δcol) per pixel; an *index* is a flat exemplar position ``row·w + col``.

Candidates are stored **pixel-major**: a pixel's K candidates lie next to each other.
Indices and scores are B×h×w×K, offsets B×h×w×2×K (the K row offsets, then the K
column offsets). Selecting among a pixel's candidates (softmax, top-k, gather) then
runs over contiguous memory, and ``x.permute(0, 3, 1, 2)`` is a zero-copy channels-last
B×K×h×w (or B×2K×h×w) view: the layout the ConvGRU reads.
"""

from __future__ import annotations

import functools

import torch

#: Elements (pixels × candidates × channels) gathered per chunk when scoring.
DEFAULT_GATHER_CHUNK = 1 << 22


def matching_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half-precision matching is too coarse at τ = 0.01: promote fp16/bf16 to float32."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def full_precision(fn):
    """Run ``fn`` with autocast disabled, so its correlations and softmax stay in float32+."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        with torch.autocast(device_type=device, enabled=False):
            return fn(*args, **kwargs)

    return wrapper


def pixel_grid(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinates (h×1×1 and w×1) in ``like``'s dtype and device.

    They broadcast against pixel-major B×h×w×K tensors.
    """
    rows = torch.arange(h, dtype=like.dtype, device=like.device).view(h, 1, 1)
    cols = torch.arange(w, dtype=like.dtype, device=like.device).view(w, 1)
    return rows, cols


def offsets_to_indices(offsets: torch.Tensor) -> torch.Tensor:
    """Flat exemplar indices of candidate offsets: B×h×w×2×K → B×h×w×K (int64).

    The published rule, kept exactly: clamp row and column separately, combine in
    floating point, then truncate — so a fractional row spills into the column.
    """
    h, w = offsets.shape[1:3]
    rows, cols = pixel_grid(h, w, offsets)
    row = (rows + offsets[..., 0, :]).clamp_(0, h - 1)
    col = (cols + offsets[..., 1, :]).clamp_(0, w - 1)
    return row.mul_(w).add_(col).long()


def indices_to_offsets(index: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integer offsets (index // w − r, index mod w − c): B×h×w×K → B×h×w×2×K of ``dtype``."""
    h, w = index.shape[1:3]
    rows, cols = pixel_grid(h, w, index)
    offsets = torch.empty(*index.shape[:3], 2, index.shape[3], dtype=dtype, device=index.device)
    torch.sub(index.div(w, rounding_mode="floor"), rows, out=offsets[..., 0, :])
    torch.sub(index.remainder(w), cols, out=offsets[..., 1, :])
    return offsets


def exact_index_arithmetic(h: int, w: int, dtype: torch.dtype) -> bool:
    """Whether every flat index of an h×w grid is exact in ``dtype`` (so integer shortcuts hold)."""
    mantissa = {torch.float64: 53, torch.float32: 24}.get(dtype, 11 if dtype == torch.float16 else 8)
    return h * w <= 2**mantissa


def gather_pixels(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of a per-batch pixel table: table B×N×C, index B×M (int64) → B×M×C."""
    b, n, c = table.shape
    flat = index + torch.arange(b, device=index.device).view(b, 1) * n if b > 1 else index
    return table.reshape(b * n, c).index_select(0, flat.reshape(-1)).view(b, -1, c)


def pixel_table(x: torch.Tensor) -> torch.Tensor:
    """B×C×h×w → B×(h·w)×C, one row per pixel (no copy when ``x`` is channels-last)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])


@full_precision
def match_scores(
    theta: torch.Tensor,
    phi: torch.Tensor,
    index: torch.Tensor,
    chunk_elements: int = DEFAULT_GATHER_CHUNK,
) -> torch.Tensor:
    """⟨θ(p), φ(index_k(p))⟩ for every pixel p and candidate k: index B×h×w×K → B×h×w×K.

    Vectorised over batch and candidates: each pixel's K exemplar feature rows are
    gathered and dotted with its own θ in one batched matrix product. Pixels are
    processed in chunks so that at most ``chunk_elements`` gathered values exist at once.
    """
    theta, phi = matching_dtype(theta), matching_dtype(phi)
    b, c, h, w = theta.shape
    k, n = index.shape[-1], h * w
    query = pixel_table(theta).reshape(b * n, c, 1).contiguous()  # no copies when channels-last
    table = pixel_table(phi).reshape(b * n, c).contiguous()
    rows = index.reshape(b, n * k)
    if b > 1:  # rows of the stacked B·N-row table
        rows = rows + torch.arange(b, device=rows.device).view(b, 1) * n
    rows = rows.view(b * n, k)
    # inference writes each chunk in place; under autograd (training) the chunks are concatenated
    differentiable = torch.is_grad_enabled() and (theta.requires_grad or phi.requires_grad)
    scores = None if differentiable else torch.empty(b * n, k, 1, dtype=theta.dtype, device=theta.device)
    chunks = []
    step = max(1, chunk_elements // (k * c))
    for start in range(0, b * n, step):
        stop = min(b * n, start + step)
        gathered = table.index_select(0, rows[start:stop].reshape(-1)).view(stop - start, k, c)
        if differentiable:
            chunks.append(torch.bmm(gathered, query[start:stop]))
        else:
            torch.bmm(gathered, query[start:stop], out=scores[start:stop])
    if differentiable:
        scores = torch.cat(chunks)
    return scores.view(b, h, w, k)


@full_precision
def warp_by_indices(exemplar: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_k weights_k · exemplar(index_k): exemplar B×3×h×w, index/weights B×h×w×K → B×3×h×w."""
    b, c, h, w = exemplar.shape
    k = index.shape[-1]
    gathered = gather_pixels(pixel_table(exemplar).contiguous(), index.reshape(b, -1)).view(b, h * w, k, c)
    warped = (gathered * weights.reshape(b, h * w, k, 1).to(gathered.dtype)).sum(dim=2)
    return warped.view(b, h, w, c).permute(0, 3, 1, 2)
