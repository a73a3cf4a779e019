"""CoCosNet v2 training losses (docs/architecture.md §11), as the research code computes them.

Conventions: images B×3×H×W in [-1, 1]; discriminator outputs are, per scale, the list
of layer outputs with the logits last; ``weights`` per sample (B,) select the pairs
whose exemplar shows the target's content (1) — the warp and VGG feature-matching losses
only count those. Every function returns a scalar tensor (unweighted: the weights of
:class:`~pipeline_cocosnet.training.config.LossConfig` are applied by the caller).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.attention import dense_attention
from ..models.matching import full_precision

__all__ = [
    "VGG_FEATURE_WEIGHTS",
    "weighted_mean",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "discriminator_feature_matching_loss",
    "vgg_feature_matching_loss",
    "perceptual_loss",
    "contextual_loss",
    "contextual_style_loss",
    "domain_alignment_loss",
    "warp_loss",
    "cycle_warp",
    "cycle_warp_loss",
]

#: relu1_2 … relu5_2 weights of the VGG feature-matching loss
VGG_FEATURE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def weighted_mean(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` (B×…) over its non-batch dims, then the ``weights``-weighted mean over the batch.

    ``weights`` (B,) ≥ 0; all-zero weights give 0 (still connected to the graph).
    Without weights: the plain mean. (The research code divides once more by the
    per-GPU batch; this mean does not depend on the batch size.)
    """
    if weights is None:
        return x.mean()
    per_sample = x.flatten(1).mean(dim=1)
    weights = weights.to(per_sample.dtype)
    return (per_sample * weights).sum() / weights.sum().clamp_min(1e-5)


def hinge_discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """mean(relu(1 − D(real))) + mean(relu(1 + D(fake))), averaged over scales (logits = last output)."""
    losses = [F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake)]
    return torch.stack(losses).mean()


def hinge_generator_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """−mean(D(fake)), averaged over scales."""
    return torch.stack([-f[-1].mean() for f in fake]).mean()


def discriminator_feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Σ_scales Σ_layers L1(D_l(fake), D_l(real).detach()) / num_scales, logits excluded."""
    total = fake[0][0].new_zeros(())
    for r, f in zip(real, fake):
        for r_l, f_l in zip(r[:-1], f[:-1]):
            total = total + F.l1_loss(f_l, r_l.detach())
    return total / len(fake)


def vgg_feature_matching_loss(
    fake: list[torch.Tensor],
    real: list[torch.Tensor],
    weights: torch.Tensor | None = None,
    layer_weights: tuple[float, ...] = VGG_FEATURE_WEIGHTS,
) -> torch.Tensor:
    """Σ_l w_l · L1(VGG_l(fake), VGG_l(real)) over relu1_2…relu5_2, per-sample ``weights``."""
    total = fake[0].new_zeros(())
    for w, f, r in zip(layer_weights, fake, real):
        total = total + w * weighted_mean((f - r.detach()).abs(), weights)
    return total


def perceptual_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """MSE between one VGG layer's activations (release: relu4_2)."""
    return F.mse_loss(fake, real.detach())


def contextual_loss(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.1) -> torch.Tensor:
    """Contextual loss −log CX(x, y) per sample (B,), as the research code (PONO centring).

    x, y: B×C×h×w features. Both are centred by y's per-pixel channel mean, L2-normalised
    over channels; d_ij = 1 − cos(x_i, y_j), d̃_ij = d_ij / (min_j d_ij + 1e-3),
    A_ij = softmax_j((1 − d̃_ij)/h); CX = mean_i max_j A_ij.
    """
    b, c = x.shape[:2]
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        mean = y.mean(dim=1, keepdim=True)
        x = F.normalize((x - mean).reshape(b, c, -1), dim=1, eps=1e-10)
        y = F.normalize((y - mean).reshape(b, c, -1), dim=1, eps=1e-10)
        d = 1 - torch.bmm(x.transpose(1, 2), y)  # B×Nx×Ny
        d_norm = d / (d.min(dim=-1, keepdim=True)[0] + 1e-3)
        affinity = torch.softmax((1 - d_norm) / bandwidth, dim=-1)
        cx = affinity.max(dim=-1)[0].mean(dim=1)
        return -torch.log(cx)


def contextual_style_loss(fake: list[torch.Tensor], exemplar: list[torch.Tensor]) -> torch.Tensor:
    """8·CX(relu5_2) + 4·CX(relu4_2) + 2·CX(avgpool₂ relu3_2) against the exemplar's VGG features.

    ``fake``/``exemplar``: the five VGG_LAYERS activations (relu1_2 … relu5_2).
    """
    loss = 8 * contextual_loss(fake[-1], exemplar[-1].detach()).mean()
    loss = loss + 4 * contextual_loss(fake[-2], exemplar[-2].detach()).mean()
    return loss + 2 * contextual_loss(F.avg_pool2d(fake[-3], 2), F.avg_pool2d(exemplar[-3].detach(), 2)).mean()


def domain_alignment_loss(structure: list[torch.Tensor], image: list[torch.Tensor]) -> torch.Tensor:
    """Σ_levels L1 between the structure-branch features and the exemplar branch run on (real image, label)."""
    return sum((F.l1_loss(s, i) for s, i in zip(structure, image)), structure[0].new_zeros(()))


def warp_loss(warps: list[torch.Tensor], target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_levels weighted L1(warp_l, target average-pooled to the level's size).

    warps: B×3×h×w each (coarsest first); target: B×3×H×W (the ground truth in the
    exemplar's colours); weights (B,): 1 for same-content pairs, 0 otherwise.
    """
    total = target.new_zeros(())
    for warp in warps:
        factor = target.shape[-1] // warp.shape[-1]
        pooled = F.avg_pool2d(target, factor) if factor > 1 else target
        total = total + weighted_mean((warp.float() - pooled.float()).abs(), weights)
    return total


@full_precision
def cycle_warp(theta: torch.Tensor, phi: torch.Tensor, warp: torch.Tensor, temperature: float) -> torch.Tensor:
    """Warp the dense-level warp back onto the exemplar with the transposed attention.

    theta, phi: B×C×h×w level-0 matching features; warp: B×3×h×w (level-0 warp).
    Returns B×3×h×w = softmax over structure positions of φᵀθ/τ, applied to the warp
    (float32 or wider: autocast is off, as for every correlation; see README, Precision).
    """
    b, _, h, w = warp.shape
    attention = dense_attention(phi, theta, temperature)  # B×N_exemplar×N_structure
    cycled = torch.bmm(attention, warp.to(attention.dtype).flatten(2).transpose(1, 2))
    return cycled.transpose(1, 2).reshape(b, -1, h, w)


def cycle_warp_loss(cycled: torch.Tensor, exemplar: torch.Tensor) -> torch.Tensor:
    """L1(cycle warp, exemplar average-pooled to its size)."""
    factor = exemplar.shape[-1] // cycled.shape[-1]
    return F.l1_loss(cycled.float(), F.avg_pool2d(exemplar, factor).float() if factor > 1 else exemplar.float())
