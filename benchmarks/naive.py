"""A straightforward CoCosNet v2 correspondence: the reference for speed, memory and outputs.

The same algorithm and weights as :class:`~pipeline_cocosnet.CoCosNetCorrespondence`,
written the direct way (as the research code does): PatchMatch scores its 3K candidates
in a Python loop, gathering a whole B×C×h×w exemplar feature map per candidate and keeping
them all; the dense level builds the full N×N attention matrix; convolutions run NCHW.
It lives here only to be measured against, and the tests check that the fast paths give
the same numbers (float64).
"""

from __future__ import annotations

import torch

from pipeline_cocosnet.models.attention import dense_attention
from pipeline_cocosnet.models.correspondence import CoCosNetCorrespondence
from pipeline_cocosnet.models.matching import full_precision, pixel_table
from pipeline_cocosnet.models.patchmatch import PatchMatch


def per_candidate_scores(theta: torch.Tensor, phi: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """⟨θ(p), φ(index_k(p))⟩, one candidate at a time: B×K×h×w."""
    b, c, h, w = theta.shape
    table = phi.flatten(2)  # B×C×N
    gathered = [
        torch.gather(table, 2, index[:, k].reshape(b, 1, h * w).expand(b, c, h * w)) for k in range(index.shape[1])
    ]
    features = torch.stack(gathered, dim=1).view(b, -1, c, h, w)  # every candidate's exemplar features
    return (features * theta.unsqueeze(1)).sum(dim=2)


@full_precision
def full_attention(
    theta: torch.Tensor, phi: torch.Tensor, exemplar: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense level with the whole N×N attention matrix: (warp B×3×h×w, argmax B×h×w)."""
    b, _, h, w = theta.shape
    attention = dense_attention(theta, phi, temperature)  # float32 or float64, autocast off
    warp = torch.bmm(attention, pixel_table(exemplar.to(attention.dtype)))
    return warp.transpose(1, 2).reshape(b, -1, h, w), attention.argmax(dim=-1).view(b, h, w)


class NaivePatchMatch(PatchMatch):
    def score(self, theta: torch.Tensor, phi: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return per_candidate_scores(theta, phi, index)


class NaiveCorrespondence(CoCosNetCorrespondence):
    def attend(self, theta: torch.Tensor, phi: torch.Tensor, exemplar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return full_attention(theta, phi, exemplar, self.config.temperature)


def naive_copy(model: CoCosNetCorrespondence) -> NaiveCorrespondence:
    """The straightforward twin of ``model``: same config and weights, per-candidate paths."""
    twin = NaiveCorrespondence(**model.config)
    twin.patchmatch.__class__ = NaivePatchMatch
    twin.load_state_dict(model.state_dict())
    return torch.nn.Module.to(twin, model.device, model.dtype)
