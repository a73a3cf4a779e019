"""ConvGRU-assisted PatchMatch at one level (SPEC §6–§7).

Each pixel keeps K = 16 candidate offsets into the exemplar. An iteration
propagates candidates from the left/right (then up/down) neighbours, keeps the
K best of the 3K by matching probability, and lets a ConvGRU nudge the offsets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import resize_nearest
from .matching import (
    indices_to_offsets,
    match_scores,
    matching_dtype,
    offsets_to_indices,
    pixel_grid,
    warp_by_indices,
)
from .sampling import bilinear_warp
from .update import UpdateBlock

HORIZONTAL, VERTICAL = -1, -2  # the pixel-grid dim a propagation runs along


def initial_offsets(coarse_index: torch.Tensor, size: tuple[int, int], window: int = 4) -> torch.Tensor:
    """Candidate offsets for a level from one match per pixel of the coarser level (SPEC §6).

    coarse_index: B×h'×w' flat indices at the coarser level. Returns B×2×window²×h×w
    offsets at this level: (2·Δ + 2(a−1), 2·Δ + 2(b−1)) for a, b in 0..window−1,
    each fine pixel inheriting its coarse pixel's offsets.
    """
    coarse = 2 * indices_to_offsets(coarse_index.unsqueeze(1), torch.float32)[:, :, 0]  # B×2×h'×w'
    steps = 2 * (torch.arange(window, dtype=coarse.dtype, device=coarse.device) - 1)
    b, _, hc, wc = coarse.shape
    shape = (b, window, window, hc, wc)  # candidate k = window·a + b
    drow = (coarse[:, 0, None, None] + steps.view(1, window, 1, 1, 1)).expand(shape)
    dcol = (coarse[:, 1, None, None] + steps.view(1, 1, window, 1, 1)).expand(shape)
    offsets = torch.stack([drow, dcol], dim=1).reshape(b, 2 * window * window, hc, wc)
    return resize_nearest(offsets, size).view(b, 2, window * window, *size)


def propagate(offsets: torch.Tensor, dim: int) -> torch.Tensor:
    """3K candidates from K: the previous neighbour's offsets, the own, the next neighbour's.

    Along ``dim`` (HORIZONTAL or VERTICAL) pixel i takes the offsets of pixel i−1
    (zeros for the first), then its own, then those of i+1 (zeros for the last).
    """
    n = offsets.shape[dim]
    zeros = torch.zeros_like(offsets.narrow(dim, 0, 1))
    before = torch.cat([zeros, offsets.narrow(dim, 0, n - 1)], dim=dim)
    after = torch.cat([offsets.narrow(dim, 1, n - 1), zeros], dim=dim)
    return torch.cat([before, offsets, after], dim=2)


class PatchMatch(nn.Module):
    """Hierarchical-level PatchMatch with a ConvGRU refinement; weights shared by all levels."""

    def __init__(
        self,
        feature_channels: int,
        hidden_channels: int = 32,
        num_candidates: int = 16,
        iterations: int = 5,
        temperature: float = 0.01,
        learn_offsets: bool = False,
    ):
        super().__init__()
        self.num_candidates = num_candidates
        self.iterations = iterations
        self.temperature = temperature
        #: learning-GRU mode: the final warp samples at the fractional offsets (see models/sampling.py)
        self.learn_offsets = learn_offsets
        self.init_hidden = nn.Sequential(
            nn.Conv2d(2 * feature_channels, hidden_channels, 3, padding=1),
            nn.InstanceNorm2d(hidden_channels),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            nn.InstanceNorm2d(hidden_channels),
            nn.ReLU(),
        )
        self.update = UpdateBlock(num_candidates, hidden_channels)

    def score(self, theta: torch.Tensor, phi: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Matching scores ⟨θ(p), φ(index_k(p))⟩ of the candidates, B×K×h×w (see ``match_scores``)."""
        return match_scores(theta, phi, index)

    def select(self, theta: torch.Tensor, phi: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the K most probable of the candidate offsets.

        Returns integer-valued offsets B×2×K×h×w and their probabilities B×K×h×w
        (softmax over all candidates, descending).
        """
        index = offsets_to_indices(offsets)
        probs = F.softmax(self.score(theta, phi, index) / self.temperature, dim=1, dtype=theta.dtype)
        probs, order = probs.topk(self.num_candidates, dim=1)
        return indices_to_offsets(index.gather(1, order), offsets.dtype), probs

    @torch.no_grad()
    def search(
        self, theta: torch.Tensor, phi: torch.Tensor, offsets: torch.Tensor, horizontal_first: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One PatchMatch step: propagate along both axes, selecting after each."""
        order = (HORIZONTAL, VERTICAL) if horizontal_first else (VERTICAL, HORIZONTAL)
        for dim in order:
            offsets, probs = self.select(theta, phi, propagate(offsets, dim))
        return offsets, probs

    def forward(
        self,
        theta: torch.Tensor,
        phi: torch.Tensor,
        exemplar: torch.Tensor,
        offsets: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Match θ (B×C×h×w) against φ, starting from ``offsets`` (B×2×K×h×w).

        Returns the warped exemplar B×3×h×w (exemplar already at h×w) and the final
        K indices per pixel (B×K×h×w, candidate order kept). Without ``generator``
        every step propagates horizontally first; with one, the order is drawn per step.
        """
        theta, phi = matching_dtype(theta), matching_dtype(phi)
        offsets = offsets.to(theta.dtype)
        # matching runs in float32+, the ConvGRU in the weights' dtype (e.g. fp16 components)
        hidden = self.init_hidden(torch.cat([theta, phi], dim=1).to(self.init_hidden[0].weight.dtype))
        for _ in range(self.iterations):
            offsets, probs = self.search(theta, phi, offsets, _horizontal_first(generator))
            hidden, delta = self.update(hidden, probs.to(hidden.dtype), offsets.flatten(1, 2).to(hidden.dtype))
            offsets = offsets + delta.view_as(offsets).to(offsets.dtype)
        index = offsets_to_indices(offsets)
        if self.learn_offsets:  # differentiable in the GRU's updates; index only seeds the next level
            return bilinear_warp(theta, phi, exemplar, offsets, self.temperature), index
        weights = F.softmax(self.score(theta, phi, index) / self.temperature, dim=1, dtype=theta.dtype)
        return warp_by_indices(exemplar.to(weights.dtype), index, weights), index


def _horizontal_first(generator: torch.Generator | None) -> bool:
    if generator is None:
        return True
    return bool(torch.rand((), generator=generator, device=generator.device) < 0.5)


__all__ = ["PatchMatch", "initial_offsets", "propagate", "pixel_grid", "HORIZONTAL", "VERTICAL"]
