"""Differentiable matching at fractional offsets (the learning-GRU mode of PatchMatch).

The published final step rounds the GRU-refined offsets to integer indices, so no
gradient reaches the GRU. Here the exemplar and φ are instead sampled *bilinearly*
at the fractional positions, so the loss sees (and trains) the GRU's offset updates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .matching import autocast_disabled


def sample_at_offsets(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``x`` at every pixel's candidate positions.

    x: B×C×h×w; offsets: B×2×K×h×w fractional (Δrow, Δcol), rows first, applied at
    each pixel's own position and clamped to the image per axis (the published rule,
    without the truncation). Returns B×C×K×h×w; differentiable in ``x`` and ``offsets``
    (except where a clamp is active).
    """
    b, c, h, w = x.shape
    k = offsets.shape[2]
    rows = torch.arange(h, dtype=offsets.dtype, device=offsets.device).view(h, 1)
    cols = torch.arange(w, dtype=offsets.dtype, device=offsets.device).view(1, w)
    row = (rows + offsets[:, 0]).clamp(0, h - 1)  # B×K×h×w
    col = (cols + offsets[:, 1]).clamp(0, w - 1)
    grid = torch.stack([col * (2 / max(w - 1, 1)) - 1, row * (2 / max(h - 1, 1)) - 1], dim=-1)
    sampled = F.grid_sample(
        x, grid.reshape(b, k * h, w, 2).to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )
    return sampled.view(b, c, k, h, w)


def bilinear_warp(
    theta: torch.Tensor, phi: torch.Tensor, exemplar: torch.Tensor, offsets: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Warp with candidates at fractional offsets: Σ_k softmax_k(⟨θ, φ(p+o_k)⟩/τ) · exemplar(p+o_k).

    theta, phi: B×C×h×w matching features; exemplar: B×3×h×w; offsets: B×2×K×h×w.
    Returns the warp B×3×h×w (float32 or wider; autocast is disabled inside).
    """
    with autocast_disabled(theta.device.type):
        dtype = torch.promote_types(theta.dtype, torch.float32)
        theta, phi, exemplar, offsets = (t.to(dtype) for t in (theta, phi, exemplar, offsets))
        scores = (sample_at_offsets(phi, offsets) * theta.unsqueeze(2)).sum(dim=1)  # B×K×h×w
        weights = torch.softmax(scores / temperature, dim=1)
        return (sample_at_offsets(exemplar, offsets) * weights.unsqueeze(1)).sum(dim=2)


__all__ = ["sample_at_offsets", "bilinear_warp"]
