"""Level 0: dense attention between all structure and exemplar positions (docs/architecture.md §5)."""

from __future__ import annotations

import torch

from .matching import full_precision, matching_dtype, pixel_table

#: Attention rows (query pixels × exemplar pixels) computed per chunk.
DEFAULT_ATTENTION_CHUNK = 1 << 24


@full_precision
def dense_correspondence(
    theta: torch.Tensor,
    phi: torch.Tensor,
    exemplar: torch.Tensor,
    temperature: float,
    chunk_elements: int = DEFAULT_ATTENTION_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """warp = softmax(θᵀφ/τ)·exemplar, plus each pixel's most attended exemplar index.

    theta, phi: B×C×h×w matching features; exemplar: B×3×h×w (already pooled to h×w).
    Returns the warp B×3×h×w and the argmax index B×h×w (int64). Query rows are
    processed in chunks, so the N×N attention matrix never exists whole.
    """
    theta, phi = matching_dtype(theta), matching_dtype(phi)
    b, _, h, w = theta.shape
    n = h * w
    query = pixel_table(theta)  # B×N×C
    key = phi.flatten(2)  # B×C×N
    value = pixel_table(exemplar.to(theta.dtype))  # B×N×3
    step = max(1, chunk_elements // max(1, b * n))
    warps, indices = [], []
    for start in range(0, n, step):
        attention = torch.softmax(torch.bmm(query[:, start : start + step], key) / temperature, dim=-1)
        warps.append(torch.bmm(attention, value))
        indices.append(attention.argmax(dim=-1))
    warp = torch.cat(warps, dim=1).transpose(1, 2).reshape(b, -1, h, w)
    return warp, torch.cat(indices, dim=1).view(b, h, w)


@full_precision
def dense_attention(theta: torch.Tensor, phi: torch.Tensor, temperature: float) -> torch.Tensor:
    """The full attention matrix softmax(θᵀφ/τ), B×N×N (for training losses at small sizes)."""
    theta, phi = matching_dtype(theta), matching_dtype(phi)
    return torch.softmax(torch.bmm(pixel_table(theta), phi.flatten(2)) / temperature, dim=-1)


@full_precision
def best_correlation(theta: torch.Tensor, phi: torch.Tensor, chunk_elements: int = DEFAULT_ATTENTION_CHUNK) -> torch.Tensor:
    """Each structure pixel's best raw match score max_q ⟨θ(p), φ(q)⟩ (no temperature, no softmax): B×h×w.

    θ and φ are unit-norm and zero-mean per pixel, so the scores are cosine similarities
    in [-1, 1], comparable across exemplars (a softmax would normalise them away).
    """
    theta, phi = matching_dtype(theta), matching_dtype(phi)
    b, _, h, w = theta.shape
    n = h * w
    query, key = pixel_table(theta), phi.flatten(2)
    step = max(1, chunk_elements // max(1, b * phi.shape[-2] * phi.shape[-1]))
    best = [torch.bmm(query[:, start : start + step], key).amax(dim=-1) for start in range(0, n, step)]
    return torch.cat(best, dim=1).view(b, h, w)
