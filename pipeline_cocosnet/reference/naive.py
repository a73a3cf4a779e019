"""A straightforward CoCosNet v2 correspondence: the reference for speed, memory and outputs.

The same algorithm and weights as :class:`~pipeline_cocosnet.CoCosNetCorrespondence`,
written the direct way (as the research code does): candidates are channel-first maps
(B×2×3K×h×w offsets), PatchMatch scores all 3K candidates of both propagation steps in a
Python loop, gathering a whole B×C×h×w exemplar feature map per candidate and keeping them
all; the dense level builds the full N×N attention matrix; SPADE and the ConvGRU use one
convolution per γ, β and gate and concatenate their inputs anew; convolutions run NCHW.
It lives here only to be measured against, and the tests check that the fast paths give
the same numbers (float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline_cocosnet.models.attention import dense_attention
from pipeline_cocosnet.models.correspondence import CoCosNetCorrespondence
from pipeline_cocosnet.models.layers import SPADE, Conv2d, resize_nearest
from pipeline_cocosnet.models.matching import full_precision, matching_dtype, pixel_table
from pipeline_cocosnet.models.patchmatch import PatchMatch, by_propagation_order, propagation_orders
from pipeline_cocosnet.models.update import SepConvGRU


def per_candidate_scores(theta: torch.Tensor, phi: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """⟨θ(p), φ(index_k(p))⟩ for index B×K×h×w, one candidate at a time: B×K×h×w."""
    b, c, h, w = theta.shape
    table = phi.flatten(2)  # B×C×N
    gathered = [
        torch.gather(table, 2, index[:, k].reshape(b, 1, h * w).expand(b, c, h * w)) for k in range(index.shape[1])
    ]
    features = torch.stack(gathered, dim=1).view(b, -1, c, h, w)  # every candidate's exemplar features
    return (features * theta.unsqueeze(1)).sum(dim=2)


@full_precision
def unchunked_dense_correspondence(
    theta: torch.Tensor, phi: torch.Tensor, exemplar: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense level with the whole N×N attention matrix: (warp B×3×h×w, argmax B×h×w)."""
    b, _, h, w = theta.shape
    attention = dense_attention(theta, phi, temperature)  # float32 or float64, autocast off
    warp = torch.bmm(attention, pixel_table(exemplar.to(attention.dtype)))
    return warp.transpose(1, 2).reshape(b, -1, h, w), attention.argmax(dim=-1).view(b, h, w)


def to_indices(offsets: torch.Tensor) -> torch.Tensor:
    """Offsets B×2×K×h×w → indices B×K×h×w: clamp per axis, combine in float, truncate (docs/architecture.md §7)."""
    h, w = offsets.shape[-2:]
    rows = torch.arange(h, dtype=offsets.dtype, device=offsets.device).view(h, 1)
    cols = torch.arange(w, dtype=offsets.dtype, device=offsets.device).view(1, w)
    row = torch.clamp(rows + offsets[:, 0], 0, h - 1)
    col = torch.clamp(cols + offsets[:, 1], 0, w - 1)
    return (row * w + col).long()


def to_offsets(index: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Indices B×K×h×w → integer offsets B×2×K×h×w."""
    h, w = index.shape[-2:]
    rows = torch.arange(h, device=index.device).view(h, 1)
    cols = torch.arange(w, device=index.device).view(1, w)
    return torch.stack([index // w - rows, index % w - cols], dim=1).to(dtype)


def shift_candidates(offsets: torch.Tensor, dim: int) -> torch.Tensor:
    """B×2×K×h×w → B×2×3K×h×w: the previous neighbour's offsets (zeros at the border), own, next."""
    n = offsets.shape[dim]
    zeros = torch.zeros_like(offsets.narrow(dim, 0, 1))
    before = torch.cat([zeros, offsets.narrow(dim, 0, n - 1)], dim=dim)
    after = torch.cat([offsets.narrow(dim, 1, n - 1), zeros], dim=dim)
    return torch.cat([before, offsets, after], dim=2)


class NaivePatchMatch(PatchMatch):
    """The published PatchMatch loop, channel-first, every candidate scored in every step."""

    def select(self, theta, phi, offsets):
        index = to_indices(offsets)
        probs = F.softmax(per_candidate_scores(theta, phi, index) / self.temperature, dim=1)
        probs, order = probs.topk(self.num_candidates, dim=1)
        return to_offsets(index.gather(1, order), offsets.dtype), probs

    def propagate_and_select(self, theta, phi, offsets, horizontal_first: bool):
        for dim in (-1, -2) if horizontal_first else (-2, -1):
            offsets, probs = self.select(theta, phi, shift_candidates(offsets, dim))
        return offsets, probs

    def forward(self, theta, phi, exemplar, offsets, generator=None, iterations=None, on_iteration=None):
        theta, phi = matching_dtype(theta), matching_dtype(phi)
        offsets = offsets.permute(0, 3, 4, 1, 2).to(theta.dtype)  # the model's seeds → B×2×K×h×w
        hidden = self.init_hidden(torch.cat([theta, phi], dim=1).to(self.init_hidden[0].weight.dtype))
        iterations = self.iterations if iterations is None else iterations
        for horizontal_first in propagation_orders(generator, iterations, theta.shape[0]):
            with torch.no_grad():
                offsets, probs = by_propagation_order(self.propagate_and_select, horizontal_first, theta, phi, offsets)
            hidden, delta = self.update(hidden, probs.to(hidden.dtype), offsets.flatten(1, 2).to(hidden.dtype))
            offsets = offsets + delta.view_as(offsets).to(offsets.dtype)
            if on_iteration is not None:
                on_iteration()
        index = to_indices(offsets)
        weights = F.softmax(per_candidate_scores(theta, phi, index) / self.temperature, dim=1)
        b, _, h, w = exemplar.shape
        source = exemplar.to(weights.dtype).flatten(2)
        warp = sum(
            torch.gather(source, 2, index[:, k].reshape(b, 1, -1).expand(b, 3, -1)).view(b, 3, h, w) * weights[:, k : k + 1]
            for k in range(index.shape[1])
        )
        return warp, index.permute(0, 2, 3, 1)  # the model's pixel-major index layout


class PlainSPADE(SPADE):
    """SPADE as written in docs/architecture.md §3: mean and unbiased variance per pixel, separate γ and β convolutions."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        actv = F.relu(self.mlp_shared(resize_nearest(cond, x.shape[-2:])))
        normalized = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, keepdim=True) + 1e-8)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class PlainSepConvGRU(SepConvGRU):
    """The ConvGRU equations of docs/architecture.md §7, one convolution per gate."""

    def forward(self, h: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        x = torch.cat(inputs, dim=1)
        for axis in "12":
            convz, convr, convq = (getattr(self, f"conv{gate}{axis}") for gate in "zrq")
            hx = torch.cat([h, x], dim=1)
            z, r = torch.sigmoid(convz(hx)), torch.sigmoid(convr(hx))
            q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
            h = (1 - z) * h + z * q
        return h


def plain_layers(model: torch.nn.Module) -> torch.nn.Module:
    """Switch ``model``'s SPADE, ConvGRU and reflect-padded convolutions (in place) to their plain versions
    (``nn.Conv2d``: the padded copy, then the convolution); returns it."""
    for module in model.modules():
        if type(module) is SPADE:
            module.__class__ = PlainSPADE
        elif type(module) is SepConvGRU:
            module.__class__ = PlainSepConvGRU
        elif isinstance(module, Conv2d):
            module.__class__ = torch.nn.Conv2d
    return model


class NaiveCorrespondence(CoCosNetCorrespondence):
    def dense_correspondence(self, theta: torch.Tensor, phi: torch.Tensor, exemplar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unchunked_dense_correspondence(theta, phi, exemplar, self.config.temperature)


def naive_copy(model: CoCosNetCorrespondence) -> NaiveCorrespondence:
    """The straightforward twin of ``model``: same config and weights, per-candidate paths, plain layers."""
    twin = NaiveCorrespondence(**model.config)
    twin.patchmatch.__class__ = NaivePatchMatch
    twin.load_state_dict(model.state_dict())
    return plain_layers(torch.nn.Module.to(twin, model.device, model.dtype))
