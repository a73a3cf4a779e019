"""The translation network: a SPADE generator conditioned on the warps and the structure (docs/architecture.md §8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .inputs import check_batch, check_size
from .layers import SPADEResBlock, resize_nearest

#: (input width, output width, upsample ×2 before the block), widths in units of ngf.
#: The generator starts at 1/32 of the output size; five upsamplings reach full size.
GENERATOR_BLOCKS = (
    (8, 8, False),  # head
    (8, 8, True),
    (8, 8, False),
    (8, 8, True),
    (8, 4, True),
    (4, 2, True),
    (2, 1, True),
)
GENERATOR_STRIDE = 32


class CoCosNetTranslator(ModelMixin, ConfigMixin):
    """SPADE generator: ``model(label, warps)`` → image B×3×H×W in [-1, 1].

    ``label`` is B×Cl×H×W in [0, 1]; ``warps`` the correspondence network's warped
    exemplars (any sizes, coarsest first), each B×3×h×w; H and W divisible by 32.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        label_channels: int = 20,
        ngf: int = 64,
        num_warps: int = 4,
        image_channels: int = 3,
        spade_hidden: int = 128,
    ):
        super().__init__()
        cond_channels = image_channels * num_warps + label_channels
        self.conv_in = nn.Conv2d(cond_channels, 8 * ngf, 3, padding=1)
        self.blocks = nn.ModuleList(
            SPADEResBlock(fin * ngf, fout * ngf, cond_channels, spade_hidden) for fin, fout, _ in GENERATOR_BLOCKS
        )
        self.upsample_before = [up for _, _, up in GENERATOR_BLOCKS]
        self.conv_out = nn.Conv2d(ngf, image_channels, 3, padding=1)

    def forward(self, label: torch.Tensor, warps: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        check_batch("label", label, self.config.label_channels)
        check_size(*label.shape[-2:], "label")
        if len(warps) != self.config.num_warps:
            raise ValueError(f"the translator takes {self.config.num_warps} warps (one per level), got {len(warps)}")
        for i, warp in enumerate(warps):
            if warp.dim() != 4 or warp.shape[:2] != (label.shape[0], self.config.image_channels):
                raise ValueError(f"warps[{i}] must be B×{self.config.image_channels}×h×w with B = {label.shape[0]}, got {tuple(warp.shape)}")
        size = tuple(label.shape[-2:])
        cond = torch.cat([resize_nearest(w.to(label.dtype), size) for w in warps] + [label], dim=1)
        x = self.conv_in(resize_nearest(cond, (size[0] // GENERATOR_STRIDE, size[1] // GENERATOR_STRIDE)))
        for block, upsample in zip(self.blocks, self.upsample_before):
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, cond)
        return torch.tanh(self.conv_out(F.leaky_relu(x, 0.2)))
