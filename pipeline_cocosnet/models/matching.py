"""Matching primitives shared by the dense and PatchMatch levels.

Conventions: matching features θ (structure side) and φ (exemplar side) are
B×C×h×w with unit-norm, zero-mean channel vectors (SPEC §4). A *candidate* is an
offset (Δrow, Δcol) per pixel; offsets are stored as B×2×K×h×w (rows first).
An *index* is a flat exemplar position ``row·w + col`` (B×K×h×w, int64).
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
    """Row and column coordinates (h×1 and 1×w) in ``like``'s dtype and device."""
    rows = torch.arange(h, dtype=like.dtype, device=like.device).view(h, 1)
    cols = torch.arange(w, dtype=like.dtype, device=like.device).view(1, w)
    return rows, cols


def offsets_to_indices(offsets: torch.Tensor) -> torch.Tensor:
    """Flat exemplar indices of candidate offsets B×2×K×h×w → B×K×h×w (int64).

    The published rule, kept exactly: clamp row and column separately, combine in
    floating point, then truncate — so a fractional row spills into the column.
    """
    h, w = offsets.shape[-2:]
    rows, cols = pixel_grid(h, w, offsets)
    row = (rows + offsets[:, 0]).clamp_(0, h - 1)
    col = (cols + offsets[:, 1]).clamp_(0, w - 1)
    return row.mul_(w).add_(col).long()


def indices_to_offsets(index: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integer offsets (index // w − r, index mod w − c) as B×2×K×h×w of ``dtype``."""
    h, w = index.shape[-2:]
    rows, cols = pixel_grid(h, w, index)
    offsets = torch.empty(index.shape[0], 2, *index.shape[1:], dtype=dtype, device=index.device)
    torch.sub(index.div(w, rounding_mode="floor"), rows, out=offsets[:, 0])
    torch.sub(index.remainder(w), cols, out=offsets[:, 1])
    return offsets


def gather_pixels(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of a per-batch pixel table: table B×N×C, index B×M (int64) → B×M×C."""
    b, n, c = table.shape
    flat = index + torch.arange(b, device=index.device).view(b, 1) * n
    return table.reshape(b * n, c).index_select(0, flat.reshape(-1)).view(b, -1, c)


def pixel_table(x: torch.Tensor) -> torch.Tensor:
    """B×C×h×w → B×(h·w)×C (contiguous rows, one per pixel)."""
    return x.flatten(2).transpose(1, 2).contiguous()


@full_precision
def match_scores(
    theta: torch.Tensor,
    phi: torch.Tensor,
    index: torch.Tensor,
    chunk_elements: int = DEFAULT_GATHER_CHUNK,
) -> torch.Tensor:
    """⟨θ(p), φ(index_k(p))⟩ for every pixel p and candidate k: B×K×h×w.

    Vectorised over batch and candidates: each pixel's K exemplar feature rows are
    gathered and dotted with its own θ in one batched matrix product. Pixels are
    processed in chunks so that at most ``chunk_elements`` gathered values exist at once.
    """
    theta, phi = matching_dtype(theta), matching_dtype(phi)
    b, c, h, w = theta.shape
    k, n = index.shape[1], h * w
    # pixel-major layouts (N×B×…), so that a chunk of pixels is one contiguous slice
    query = theta.permute(2, 3, 0, 1).reshape(n, b, c, 1).contiguous()
    table = pixel_table(phi).view(b * n, c)
    rows = index.reshape(b, k, n).permute(2, 0, 1)  # N×B×K: each pixel's candidates together
    if b > 1:
        rows = rows + torch.arange(b, device=rows.device).view(1, b, 1) * n
    rows = rows.contiguous()
    # inference writes each chunk in place; under autograd (training) the chunks are concatenated
    differentiable = torch.is_grad_enabled() and (theta.requires_grad or phi.requires_grad)
    scores = None if differentiable else torch.empty(n, b, k, 1, dtype=theta.dtype, device=theta.device)
    chunks = []
    step = max(1, chunk_elements // (b * k * c))
    for start in range(0, n, step):
        stop = min(n, start + step)
        m = (stop - start) * b
        gathered = table.index_select(0, rows[start:stop].view(-1)).view(m, k, c)
        if differentiable:
            chunks.append(torch.bmm(gathered, query[start:stop].view(m, c, 1)))
        else:
            torch.bmm(gathered, query[start:stop].view(m, c, 1), out=scores[start:stop].view(m, k, 1))
    if differentiable:
        scores = torch.cat(chunks)
    return scores.view(n, b, k).permute(1, 2, 0).reshape(b, k, h, w)


@full_precision
def warp_by_indices(exemplar: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_k weights_k · exemplar(index_k): exemplar B×3×h×w, index/weights B×K×h×w → B×3×h×w."""
    b, c, h, w = exemplar.shape
    k = index.shape[1]
    gathered = gather_pixels(pixel_table(exemplar), index.reshape(b, -1))  # B×(K·N)×3
    gathered = gathered.view(b, k, h * w, c)
    warped = (gathered * weights.reshape(b, k, h * w, 1).to(gathered.dtype)).sum(dim=1)
    return warped.transpose(1, 2).reshape(b, c, h, w)
