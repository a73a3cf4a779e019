"""Multi-scale PatchGAN discriminator (pix2pixHD/SPADE style, as CoCosNet v2 trains with).

Each scale: conv4×4/2 (bias) → lrelu, then (n−1) × [SN conv4×4 (stride 2, the last
stride 1; no bias) → IN → lrelu] with widths doubling up to 512, then conv4×4 → 1 logit map.
Scale s sees the input average-pooled s times (3×3, stride 2, pad 1, padding not counted).
Input: concat(label, image) — B×(Cl+3)×H×W.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["NLayerDiscriminator", "MultiScaleDiscriminator", "map_published_discriminator_keys"]


class NLayerDiscriminator(nn.Module):
    """One scale. ``forward`` returns every layer's output; the last one is the logit map."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        layers: list[nn.Sequential] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2))]
        width = ndf
        for n in range(1, n_layers):
            previous, width = width, min(width * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = spectral_norm(nn.Conv2d(previous, width, 4, stride=stride, padding=1, bias=False))
            layers.append(nn.Sequential(conv, nn.InstanceNorm2d(width), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(width, 1, 4, stride=1, padding=1)))
        for i, layer in enumerate(layers):
            self.add_module(f"model{i}", layer)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.children():
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiScaleDiscriminator(nn.Module):
    """``num_d`` scales (release: 2) of :class:`NLayerDiscriminator` (release: 4 layers, ndf 64).

    ``forward(x)`` with x B×(Cl+3)×H×W returns, per scale, the list of layer outputs
    (intermediate features first, logits last).
    """

    def __init__(self, label_channels: int, image_channels: int = 3, ndf: int = 64, n_layers: int = 4, num_d: int = 2):
        super().__init__()
        for i in range(num_d):
            self.add_module(f"discriminator_{i}", NLayerDiscriminator(label_channels + image_channels, ndf, n_layers))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for i, scale in enumerate(self.children()):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(scale(x))
        return results


def map_published_discriminator_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The research code's ``latest_net_D.pth`` keys → ours (its unused ``dec`` branch is dropped).

    ``…weight_orig``/``weight_u``/``weight_v`` become the parametrization's
    ``…parametrizations.weight.original``/``_u``/``_v``.
    """
    mapped = {}
    for key, value in state.items():
        if re.search(r"\.dec\.", key):
            continue
        key = re.sub(r"\.weight_orig$", ".parametrizations.weight.original", key)
        key = re.sub(r"\.weight_u$", ".parametrizations.weight.0._u", key)
        key = re.sub(r"\.weight_v$", ".parametrizations.weight.0._v", key)
        mapped[key] = value
    return mapped
