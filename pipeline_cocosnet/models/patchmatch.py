"""ConvGRU-assisted PatchMatch at one level (docs/architecture.md §6–§7).

Each pixel keeps K = 16 candidate offsets into the exemplar. An iteration
propagates candidates from the left/right (then up/down) neighbours, keeps the
K best of the 3K by matching probability, and lets a ConvGRU nudge the offsets.
Candidates are pixel-major (B×h×w×K indices, B×h×w×2×K offsets; see ``matching``).
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import fused_search
from .layers import InstanceNorm, resize_nearest
from .matching import (
    exact_index_arithmetic,
    indices_to_offsets,
    match_scores,
    matching_dtype,
    offsets_to_indices,
    warp_by_indices,
)
from .sampling import bilinear_warp
from .update import UpdateBlock

VERTICAL, HORIZONTAL = 1, 2  # the pixel-major dim (B×h×w×…) a propagation runs along


def initial_offsets(coarse_index: torch.Tensor, size: tuple[int, int], window: int = 4) -> torch.Tensor:
    """Candidate offsets for a level from one match per pixel of the coarser level (docs/architecture.md §6).

    coarse_index: B×h'×w' flat indices at the coarser level. Returns B×h×w×2×window²
    offsets at this level: (2·Δ + 2(a−1), 2·Δ + 2(b−1)) for a, b in 0..window−1
    (candidate k = window·a + b), each fine pixel inheriting its coarse pixel's offsets.
    """
    coarse = 2 * indices_to_offsets(coarse_index.unsqueeze(-1), torch.float32)[..., 0]  # B×h'×w'×2
    steps = 2 * (torch.arange(window, dtype=coarse.dtype, device=coarse.device) - 1)
    b, hc, wc, _ = coarse.shape
    shape = (b, hc, wc, window, window)
    drow = (coarse[..., 0, None, None] + steps.view(window, 1)).expand(shape)
    dcol = (coarse[..., 1, None, None] + steps.view(1, window)).expand(shape)
    offsets = torch.stack([drow, dcol], dim=3).reshape(b, hc, wc, 2 * window * window)
    fine = resize_nearest(offsets.permute(0, 3, 1, 2), size)  # channels-last B×2K×h×w view
    return fine.permute(0, 2, 3, 1).reshape(b, *size, 2, window * window)


def propagate(offsets: torch.Tensor, dim: int) -> torch.Tensor:
    """3K candidates from K: the previous neighbour's offsets, the own, the next neighbour's.

    offsets: B×h×w×2×K. Along ``dim`` (HORIZONTAL or VERTICAL) pixel i takes the offsets
    of pixel i−1 (zeros for the first), then its own, then those of i+1 (zeros for the
    last): B×h×w×2×3K.
    """
    n, k = offsets.shape[dim], offsets.shape[-1]
    out = offsets.new_empty(*offsets.shape[:-1], 3 * k)
    before, own, after = out.split(k, dim=-1)
    own.copy_(offsets)
    before.narrow(dim, 1, n - 1).copy_(offsets.narrow(dim, 0, n - 1))
    before.narrow(dim, 0, 1).zero_()
    after.narrow(dim, 0, n - 1).copy_(offsets.narrow(dim, 1, n - 1))
    after.narrow(dim, n - 1, 1).zero_()
    return out


def neighbour_indices(index: torch.Tensor, dim: int) -> torch.Tensor:
    """The indices the neighbours' integer candidates give at each pixel: B×h×w×K → B×h×w×2K.

    Equal to ``offsets_to_indices(propagate(indices_to_offsets(index), dim))`` without the
    own K, computed on the integers: the previous neighbour's match q, applied one pixel
    further along ``dim``, lands one exemplar step further (clamped at the border), the
    next neighbour's one step back; a border pixel's missing neighbour is the zero offset.
    """
    h, w = index.shape[1:3]
    n, k = index.shape[dim], index.shape[-1]
    if dim == VERTICAL:
        step, coordinate, last = w, index.div(w, rounding_mode="floor"), h - 1
    else:
        step, coordinate, last = 1, index.remainder(w), w - 1
    out = index.new_empty(*index.shape[:-1], 2 * k)
    before, after = out.split(k, dim=-1)
    torch.add(index.narrow(dim, 0, n - 1), coordinate.narrow(dim, 0, n - 1) < last, alpha=step, out=before.narrow(dim, 1, n - 1))
    torch.add(index.narrow(dim, 1, n - 1), coordinate.narrow(dim, 1, n - 1) > 0, alpha=-step, out=after.narrow(dim, 0, n - 1))
    own = torch.arange(h * w, device=index.device).view(h, w, 1)  # each pixel's own position
    before.narrow(dim, 0, 1).copy_(own.narrow(dim - 1, 0, 1))
    after.narrow(dim, n - 1, 1).copy_(own.narrow(dim - 1, n - 1, 1))
    return out


class PatchMatch(nn.Module):
    """Hierarchical-level PatchMatch with a ConvGRU refinement; weights shared by all levels."""

    def __init__(
        self,
        feature_channels: int,
        hidden_channels: int = 32,
        num_candidates: int = 16,
        iterations: int = 5,
        temperature: float = 0.01,
        learn_gru: bool = False,
    ):
        super().__init__()
        self.num_candidates = num_candidates
        self.iterations = iterations
        self.temperature = temperature
        #: learning-GRU mode: the final warp samples at the fractional offsets (see models/sampling.py)
        self.learn_gru = learn_gru
        self.init_hidden = nn.Sequential(
            nn.Conv2d(2 * feature_channels, hidden_channels, 3, padding=1),
            InstanceNorm(),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            InstanceNorm(),
            nn.ReLU(),
        )
        self.update = UpdateBlock(num_candidates, hidden_channels)

    def score(self, theta: torch.Tensor, phi: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Matching scores ⟨θ(p), φ(index_k(p))⟩ of candidates B×h×w×K (see ``match_scores``)."""
        return match_scores(theta, phi, index)

    def keep_best(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax over each pixel's candidates; the K best candidates' probabilities (descending) and positions.

        The K are ranked by score, which is the ranking by probability wherever the probabilities
        are distinct: at τ = 0.01 a float32 softmax rounds every candidate more than ~1.04 below
        the best to exactly 0, and ranking those zeros would pick among them arbitrarily (float64,
        where nothing underflows, ranks the same either way).
        """
        probs = F.softmax(scores / self.temperature, dim=-1, dtype=scores.dtype)
        best = scores.topk(self.num_candidates, dim=-1).indices
        return probs.gather(-1, best), best

    @torch.no_grad()
    def search(
        self,
        theta: torch.Tensor,
        phi: torch.Tensor,
        offsets: torch.Tensor,
        horizontal_first: bool,
        workspace: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One PatchMatch step: propagate along one axis and keep the best K, then along the other.

        offsets: B×h×w×2×K (fractional after a GRU update). Returns the kept integer offsets
        B×h×w×2×K and their probabilities B×h×w×K (softmax over the 3K, descending).

        On the CPU (float32/float64) the step runs fused per pixel (``fused_search``: the same
        equations, one pass over memory per half-step); the tensor operations below are the
        plain form, used on other devices and checked against it by ``tests/test_fast_paths.py``.
        ``workspace``: a dict shared by the steps of one level, where the fused step keeps its
        buffers (each step's outputs are overwritten by the next step's: see ``fused_search``).
        """
        if fused_search.available(theta, offsets) and exact_index_arithmetic(*offsets.shape[1:3], offsets.dtype):
            return fused_search.fused_search(theta, phi, offsets, horizontal_first, self.temperature, workspace=workspace)
        first, second = (HORIZONTAL, VERTICAL) if horizontal_first else (VERTICAL, HORIZONTAL)
        index = offsets_to_indices(propagate(offsets, first))
        scores = self.score(theta, phi, index)
        _, best = self.keep_best(scores)
        index, scores = index.gather(-1, best), scores.gather(-1, best)
        if exact_index_arithmetic(*index.shape[1:3], offsets.dtype):
            # integer positions now: the neighbours' candidates are shifted indices and the
            # own K keep their scores, so only 2K of the 3K candidates are scored again
            neighbours = neighbour_indices(index, second)
            neighbour_scores = self.score(theta, phi, neighbours)
            k = self.num_candidates
            index = torch.cat([neighbours[..., :k], index, neighbours[..., k:]], dim=-1)
            scores = torch.cat([neighbour_scores[..., :k], scores, neighbour_scores[..., k:]], dim=-1)
        else:  # flat indices beyond the float mantissa: the published float arithmetic, literally
            index = offsets_to_indices(propagate(indices_to_offsets(index, offsets.dtype), second))
            scores = self.score(theta, phi, index)
        probs, best = self.keep_best(scores)
        return indices_to_offsets(index.gather(-1, best), offsets.dtype), probs

    def forward(
        self,
        theta: torch.Tensor,
        phi: torch.Tensor,
        exemplar: torch.Tensor,
        offsets: torch.Tensor,
        generator: Generators = None,
        iterations: int | None = None,
        on_iteration: Callable[[], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Match θ (B×C×h×w) against φ, starting from ``offsets`` (B×h×w×2×K).

        Returns the warped exemplar B×3×h×w (exemplar already at h×w) and the final
        K indices per pixel (B×h×w×K, candidate order kept). Without ``generator``
        every step propagates horizontally first; with one, the order is drawn per step
        (see :func:`propagation_orders`; a list gives each batch item its own).
        ``iterations``: search + GRU steps (default: the model's own, 5 in CoCosNet v2);
        fewer is faster and coarser. ``on_iteration()`` is called after each step (the
        pipeline's interruption check: it may raise to abandon the call).
        """
        # matching features pixel-major (channels-last) once per level: the search steps read them as tables
        theta, phi = (matching_dtype(x).contiguous(memory_format=torch.channels_last) for x in (theta, phi))
        offsets = offsets.to(theta.dtype)
        orders = propagation_orders(generator, self.iterations if iterations is None else iterations, theta.shape[0])
        # published mode: the GRU's offsets only reach the loss through integer indices, so no
        # gradient can flow back through it; record no autograd graph for it (training memory)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.learn_gru):
            # matching runs in float32+, the ConvGRU in the weights' dtype (e.g. fp16 components)
            hidden = self.init_hidden(torch.cat([theta, phi], dim=1).to(self.init_hidden[0].weight.dtype))
            # the fused CPU step's buffers, reused by every step of this level: a step's outputs
            # are consumed (by the GRU, or copied back into batch order) before the next step
            workspace: dict = {}
            step = functools.partial(self.search, workspace=workspace)
            for horizontal_first in orders:
                offsets, probs = by_propagation_order(step, horizontal_first, theta, phi, offsets)
                # pixel-major B×h×w×C is channels-last B×C×h×w: the GRU reads and writes it without copies
                offset_maps = offsets.flatten(3).permute(0, 3, 1, 2).to(hidden.dtype)  # B×2K×h×w
                hidden, delta = self.update(hidden, probs.permute(0, 3, 1, 2).to(hidden.dtype), offset_maps)
                offsets = offsets + delta.permute(0, 2, 3, 1).reshape(offsets.shape).to(offsets.dtype)
                if on_iteration is not None:
                    on_iteration()
            workspace.clear()
        index = offsets_to_indices(offsets)
        if self.learn_gru:  # differentiable in the GRU's updates; index only seeds the next level
            return bilinear_warp(theta, phi, exemplar, offsets.permute(0, 3, 4, 1, 2), self.temperature), index
        weights = F.softmax(self.score(theta, phi, index) / self.temperature, dim=-1, dtype=theta.dtype)
        return warp_by_indices(exemplar.to(weights.dtype), index, weights), index


#: what the ``generator`` argument takes: none, one, or one per batch item (as diffusers pipelines)
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def propagation_orders(generator: Generators, iterations: int, batch_size: int) -> list[list[bool]]:
    """Per iteration, per batch item: whether the PatchMatch step propagates horizontally first.

    ``None``: always horizontal first. One generator: one draw per iteration, shared by the
    batch. A list (one generator per item): item i's orders come from generator i only, so an
    item's result does not depend on what else is in the batch. Each generator draws all of a
    level's ``iterations`` numbers at once on its own device (the same stream as one draw per
    iteration on a CPU generator), read back together: one host sync per level, not per iteration.
    """
    if generator is None:
        return [[True] * batch_size for _ in range(iterations)]
    if isinstance(generator, torch.Generator):
        generators = [generator]
    else:
        generators = list(generator)
        if len(generators) != batch_size or not all(isinstance(g, torch.Generator) for g in generators):
            raise ValueError(
                f"generator must be one torch.Generator or a list of {batch_size} (one per batch item), "
                f"got {len(generators)} items"
            )
    draws = [torch.rand(iterations, generator=g, device=g.device) for g in generators]
    table = torch.stack([d.to(draws[0].device) for d in draws]).lt(0.5).tolist()  # the one host sync
    if len(table) == 1:
        return [[first] * batch_size for first in table[0]]
    return [list(column) for column in zip(*table)]


def by_propagation_order(
    step: Callable[..., tuple[torch.Tensor, ...]], horizontal_first: list[bool], *tensors: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``step(*tensors, horizontal_first)`` on the batch, where items may differ in order.

    ``tensors`` are batch-first; ``step`` treats items independently and returns batch-first
    tensors. When every item has the same order it runs once on the whole batch, else once
    per order on that order's items, and the outputs are put back in batch order.
    """
    if all(order == horizontal_first[0] for order in horizontal_first):
        return step(*tensors, horizontal_first[0])
    device = tensors[0].device
    groups = []
    for order in (True, False):
        items = torch.tensor([i for i, o in enumerate(horizontal_first) if o == order], device=device)
        groups.append((items, step(*(t.index_select(0, items) for t in tensors), order)))
    outputs = []
    for part in range(len(groups[0][1])):
        first = groups[0][1][part]
        out = first.new_empty((len(horizontal_first), *first.shape[1:]))
        for items, results in groups:
            out.index_copy_(0, items, results[part])
        outputs.append(out)
    return tuple(outputs)


__all__ = [
    "PatchMatch",
    "Generators",
    "propagation_orders",
    "by_propagation_order",
    "initial_offsets",
    "propagate",
    "neighbour_indices",
    "HORIZONTAL",
    "VERTICAL",
]
