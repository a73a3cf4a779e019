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

import contextlib
import functools
import warnings

import torch

#: Elements (pixels × candidates × channels) gathered per chunk when scoring.
DEFAULT_GATHER_CHUNK = 1 << 22


def matching_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half-precision matching is too coarse at τ = 0.01: promote fp16/bf16 to float32."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def autocast_disabled(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off on ``device_type`` (a no-op where autocast does not exist, e.g. ``meta``)."""
    if not torch.amp.is_autocast_available(device_type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, enabled=False)


def full_precision(fn):
    """Run ``fn`` with autocast disabled, so its correlations and softmax stay in float32+."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        with autocast_disabled(device):
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
    The combination runs in :func:`index_arithmetic_dtype` (fp16/bf16 → float32, float32
    above 2^24 pixels → float64): a narrower mantissa rounds ``row·w + col`` and can
    return ``h·w`` (one past the end) or overflow the int64 cast.
    """
    h, w = offsets.shape[1:3]
    offsets = offsets.to(index_arithmetic_dtype(h, w, offsets.dtype))
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


def index_arithmetic_dtype(h: int, w: int, dtype: torch.dtype) -> torch.dtype:
    """The dtype ``offsets_to_indices`` combines ``row·w + col`` in for an h×w grid given ``dtype`` offsets.

    ``dtype`` itself when it is float32 or float64 and holds every flat index exactly; else the
    narrowest of float32 / float64 that does (fp16 and bf16 are always promoted).
    """
    if dtype in (torch.float32, torch.float64) and exact_index_arithmetic(h, w, dtype):
        return dtype
    return torch.float32 if exact_index_arithmetic(h, w, torch.float32) else torch.float64


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

    theta, phi: B×C×h×w matching features (promoted to float32 when half precision);
    index: flat exemplar positions in [0, h·w). The scores are the plain equation
    ``scores[b, p, k] = Σ_c θ[b, c, p] · φ[b, c, index[b, p, k]]``, computed one of two ways:

    * inference on CPU: ``torch.sparse.sampled_addmm`` evaluates exactly the entries
      (p, index_k(p)) of the product Θ·Φᵀ without gathering φ rows
      (see ``candidate_scores_sampled``);
    * under autograd or on other devices: each pixel's K exemplar rows are gathered and
      dotted with its own θ in one batched matrix product (``candidate_scores_gathered``).

    Pixels are processed in chunks so that at most ``chunk_elements`` gathered values
    (or about that many sampled entries' index copies) exist at once.
    """
    theta, phi = matching_dtype(theta), matching_dtype(phi)
    b, c, h, w = theta.shape
    k, n = index.shape[-1], h * w
    query = pixel_table(theta).reshape(b * n, c).contiguous()  # no copies when channels-last
    table = pixel_table(phi).reshape(b * n, c).contiguous()
    rows = index.reshape(b, n * k)
    if b > 1:  # rows of the stacked B·N-row table
        rows = rows + torch.arange(b, device=rows.device).view(b, 1) * n
    rows = rows.view(b * n, k)
    differentiable = torch.is_grad_enabled() and (theta.requires_grad or phi.requires_grad)
    # sampled_addmm refuses a pattern with more entries per row than columns (K ≥ h·w: a few pixels)
    if theta.device.type == "cpu" and not differentiable and k < n:
        scores = candidate_scores_sampled(query, table, rows, chunk_elements)
    else:
        scores = candidate_scores_gathered(query, table, rows, chunk_elements, differentiable)
    return scores.view(b, h, w, k)


def candidate_scores_gathered(
    query: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, chunk_elements: int, differentiable: bool
) -> torch.Tensor:
    """scores[p, k] = ⟨query[p], table[rows[p, k]]⟩ by gathering rows and a batched product.

    query: M×C, table: N×C, rows: M×K (int64 in [0, N)) → M×K. Under autograd the chunks
    are concatenated (differentiable in ``query`` and ``table``); otherwise written in place.
    """
    m, c = query.shape
    k = rows.shape[-1]
    query = query.view(m, c, 1)
    scores = None if differentiable else torch.empty(m, k, 1, dtype=query.dtype, device=query.device)
    chunks = []
    step = max(1, chunk_elements // (k * c))
    for start in range(0, m, step):
        stop = min(m, start + step)
        gathered = table.index_select(0, rows[start:stop].reshape(-1)).view(stop - start, k, c)
        if differentiable:
            chunks.append(torch.bmm(gathered, query[start:stop]))
        else:
            torch.bmm(gathered, query[start:stop], out=scores[start:stop])
    return (torch.cat(chunks) if differentiable else scores).view(m, k)


def candidate_scores_sampled(query: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, chunk_elements: int) -> torch.Tensor:
    """scores[p, k] = ⟨query[p], table[rows[p, k]]⟩ as the sampled entries of query·tableᵀ (CPU inference).

    query: M×C, table: N×C, rows: M×K (int64 in [0, N), repeats allowed) → M×K. Each chunk
    of pixels is a CSR pattern with K entries per row at the candidates' columns;
    ``torch.sparse.sampled_addmm`` computes only those dot products, in the pattern's order,
    so no K×C gathered copy of φ exists. Not differentiable (use ``candidate_scores_gathered``).
    """
    m, k = rows.shape
    n = table.shape[0]
    scores = torch.empty(m, k, dtype=query.dtype, device=query.device)
    step = max(1, chunk_elements // k)
    table_t = table.t()
    crow_full = torch.arange(0, (min(step, m) + 1) * k, k, device=rows.device)
    # the pattern's own values are scaled by beta = 0, but 0 · NaN is NaN: they must be zeros
    zeros = torch.zeros(min(step, m) * k, dtype=query.dtype, device=query.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        for start in range(0, m, step):
            stop = min(m, start + step)
            pattern = torch.sparse_csr_tensor(
                crow_full[: stop - start + 1], rows[start:stop].reshape(-1),
                zeros[: (stop - start) * k], (stop - start, n), check_invariants=False,
            )
            sampled = torch.sparse.sampled_addmm(pattern, query[start:stop], table_t, beta=0.0)
            scores[start:stop] = sampled.values().view(stop - start, k)
    return scores


@full_precision
def warp_by_indices(exemplar: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_k weights_k · exemplar(index_k): exemplar B×3×h×w, index/weights B×h×w×K → B×3×h×w."""
    b, c, h, w = exemplar.shape
    k = index.shape[-1]
    gathered = gather_pixels(pixel_table(exemplar).contiguous(), index.reshape(b, -1)).view(b, h * w, k, c)
    warped = (gathered * weights.reshape(b, h * w, k, 1).to(gathered.dtype)).sum(dim=2)
    return warped.view(b, h, w, c).permute(0, 3, 1, 2)
