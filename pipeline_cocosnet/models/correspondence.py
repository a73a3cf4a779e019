"""The correspondence network: domain alignment + hierarchical matching (docs/architecture.md §2, §4–§7).

structure ──encoder──► f_l ──θ_l──┐
                                  ├─► level 0: dense attention (1/8)
exemplar ──encoder──► g_l ──φ_l──┘    levels 1..: PatchMatch (1/4, 1/2, 1/1), seeded
                                       by the coarser level's best match
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn

from .attention import dense_correspondence
from .matching import full_precision
from .inputs import check_batch, check_size
from .layers import ResBlock, SNConv2d, SPADEResBlock, instance_norm, normalize_channels, upsample_bilinear
from .patchmatch import Generators, PatchMatch, initial_offsets

@dataclass
class CorrespondenceOutput(BaseOutput):
    """Output of :class:`CoCosNetCorrespondence`.

    Attributes:
        warps: warped exemplar per level, coarsest first: B×3×H/8×W/8, …, B×3×H×W, in [-1, 1].
        indices: the final match indices at full resolution, B×K×H×W (flat ``row·W + col``).
        level_indices: per level, the match indices: B×1×h×w (dense argmax), then B×K×h×w.
        structure_features: the structure-side domain-aligned features, coarsest first.
        exemplar_features: the exemplar-side domain-aligned features, coarsest first.
    """

    warps: list[torch.Tensor]
    indices: torch.Tensor
    level_indices: list[torch.Tensor]
    structure_features: list[torch.Tensor]
    exemplar_features: list[torch.Tensor]


@dataclass
class MatchingFeatures:
    """Per level, coarsest first: domain-aligned features of each side and their θ/φ projections."""

    structure: list[torch.Tensor]
    exemplar: list[torch.Tensor]
    theta: list[torch.Tensor]
    phi: list[torch.Tensor]


@full_precision
def matching_projection(conv: nn.Conv2d, feature: torch.Tensor) -> torch.Tensor:
    """θ or φ of one level: the 1×1 projection of a domain-aligned feature, centred and unit-norm per pixel.

    feature: B×C×h×w in the encoder's dtype; returns B×nef×h×w in float32 or wider. The
    projection and normalisation run in float32 even for bf16/fp16 components (README
    "Precision": θ/φ are matching features): rounding θ to bf16's 8 mantissa bits moves
    the scores by ~0.4 %, i.e. ~0.4 in the logits at τ = 0.01.
    """
    dtype = torch.promote_types(feature.dtype, torch.float32)
    bias = conv.bias.to(dtype) if conv.bias is not None else None
    projected = F.conv2d(feature.to(dtype), conv.weight.to(dtype), bias)
    return normalize_channels(projected, center=True)


class DownStage(nn.Module):
    """lrelu → SN conv (stride s, no bias) → IN → ResBlock."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = SNConv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.res = ResBlock(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(instance_norm(self.conv(F.leaky_relu(x, 0.2))))


class DomainAlignmentEncoder(nn.Module):
    """Maps a structure (or exemplar + its structure) into the shared domain (docs/architecture.md §2).

    Input B×Cin×H×W; output four unit-norm feature maps at H/8, H/4, H/2, H with
    4nef, 4nef, 2nef, nef channels. Its SPADE blocks are conditioned on the input.
    """

    def __init__(self, in_channels: int, nef: int, spade_hidden: int = 128):
        super().__init__()
        widths = [nef, 2 * nef, 4 * nef, 4 * nef, 4 * nef]
        self.conv_in = SNConv2d(in_channels, nef, 3, padding=1, bias=False)
        self.stages = nn.ModuleList(
            DownStage(cin, cout, stride=1 if i == 0 else 2) for i, (cin, cout) in enumerate(zip(widths, widths[1:]))
        )
        out_widths = [4 * nef, 4 * nef, 4 * nef, 2 * nef, nef]
        self.decoder = nn.ModuleList(
            SPADEResBlock(cin, cout, in_channels, spade_hidden) for cin, cout in zip(out_widths, out_widths[1:])
        )

    @property
    def out_channels(self) -> list[int]:
        return [block.conv_1.out_channels for block in self.decoder]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = [instance_norm(self.conv_in(x))]
        for stage in self.stages:
            skips.append(stage(skips[-1]))
        feature = self.decoder[0](skips[-1], x)
        features = [feature]
        for block, skip in zip(self.decoder[1:], reversed(skips[1:-1])):
            feature = block(upsample_bilinear(feature) + skip, x)
            features.append(feature)
        return [normalize_channels(f) for f in features]


#: weight names before the domain-alignment encoders became "aligners" → now
RENAMED_KEYS = (("structure_encoder.", "structure_aligner."), ("exemplar_encoder.", "exemplar_aligner."))


def _rename_old_keys(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *args: Any) -> None:
    """Rename, in place, the weights of ``state_dict`` under ``prefix`` saved with the old module names."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        for old, new in RENAMED_KEYS:
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)


class CoCosNetCorrespondence(ModelMixin, ConfigMixin):
    """CoCosNet v2 correspondence network.

    ``model(label, exemplar, exemplar_label)`` with label/exemplar_label B×Cl×H×W in
    [0, 1] and exemplar B×3×H×W in [-1, 1]; H and W divisible by 32. The hierarchy
    is derived from the size: dense attention at 1/8, then PatchMatch at 1/4, 1/2, 1/1.

    ``learn_gru`` (default False = the published behaviour): the final warp of each
    PatchMatch level samples the exemplar and φ bilinearly at the GRU's fractional
    offsets, so gradients reach the ConvGRU (in the published model they never do).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        label_channels: int = 20,
        image_channels: int = 3,
        nef: int = 32,
        hidden_channels: int = 32,
        num_candidates: int = 16,
        iterations: int = 5,
        temperature: float = 0.01,
        learn_gru: bool = False,
        spade_hidden: int = 128,
    ):
        super().__init__()
        self.window = round(num_candidates**0.5)
        if self.window**2 != num_candidates:
            raise ValueError(f"num_candidates must be a square (4×4 = 16 in CoCosNet v2), got {num_candidates}")
        # the domain-alignment encoders ("aligners": `structure_encoder` is the pipeline's user-input encoder)
        self.structure_aligner = DomainAlignmentEncoder(label_channels, nef, spade_hidden)
        self.exemplar_aligner = DomainAlignmentEncoder(image_channels + label_channels, nef, spade_hidden)
        widths = self.structure_aligner.out_channels
        self.theta = nn.ModuleList(nn.Conv2d(c, nef, 1) for c in widths)
        self.phi = nn.ModuleList(nn.Conv2d(c, nef, 1) for c in widths)
        self.patchmatch = PatchMatch(nef, hidden_channels, num_candidates, iterations, temperature, learn_gru)
        self.register_load_state_dict_pre_hook(_rename_old_keys)  # torch's load_state_dict (training checkpoints)

    def _fix_state_dict_keys_on_load(self, state_dict: dict[str, torch.Tensor]) -> None:
        """diffusers' hook for renamed weights (``from_pretrained``): folders saved before the rename still load."""
        super()._fix_state_dict_keys_on_load(state_dict)
        _rename_old_keys(self, state_dict, "")

    @apply_forward_hook  # entry point besides forward: model CPU offload moves the weights first
    def encode(
        self, label: torch.Tensor, exemplar: torch.Tensor, exemplar_label: torch.Tensor
    ) -> MatchingFeatures:
        """Domain-aligned features of both sides and their matching projections θ, φ (docs/architecture.md §2, §4)."""
        structure = self.structure_aligner(label)
        exemplar_side = self.exemplar_aligner(torch.cat([exemplar, exemplar_label], dim=1))
        theta = [matching_projection(conv, f) for conv, f in zip(self.theta, structure)]
        phi = [matching_projection(conv, f) for conv, f in zip(self.phi, exemplar_side)]
        return MatchingFeatures(structure, exemplar_side, theta, phi)

    def dense_correspondence(
        self, theta: torch.Tensor, phi: torch.Tensor, exemplar: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The dense coarsest level: warp B×3×h×w and argmax index B×h×w (see ``attention.dense_correspondence``)."""
        return dense_correspondence(theta, phi, exemplar, self.config.temperature)

    @apply_forward_hook  # entry point besides forward: model CPU offload moves the weights first
    def match(
        self,
        features: MatchingFeatures,
        exemplar: torch.Tensor,
        generator: Generators = None,
        callback: Callable[[int, torch.Tensor], None] | None = None,
        iterations: int | None = None,
        on_iteration: Callable[[], None] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Run the level hierarchy; returns the warps and the match indices per level, coarsest first.

        Indices are B×1×h×w at the dense level, then B×K×h×w (flat ``row·w + col``).

        ``callback(level, warp)`` is called after each level with its warp B×3×h×w (e.g. to advance a
        progress bar, or to show the warps as they finish); a tensor it returns replaces that warp. ``iterations``: PatchMatch steps per
        level (default: ``config.iterations``); ``on_iteration()`` is called after each of them.
        """
        warps: list[torch.Tensor] = []
        indices: list[torch.Tensor] = []  # pixel-major, B×h×w×K
        for theta, phi in zip(features.theta, features.phi):
            size = tuple(theta.shape[-2:])
            target = F.avg_pool2d(exemplar, exemplar.shape[-1] // size[1]) if size != exemplar.shape[-2:] else exemplar
            if not indices:
                warp, index = self.dense_correspondence(theta, phi, target)
                index = index.unsqueeze(-1)
            else:
                offsets = initial_offsets(indices[-1][..., 0], size, self.window)
                warp, index = self.patchmatch(theta, phi, target, offsets, generator, iterations, on_iteration)
            warps.append(warp.to(exemplar.dtype))
            indices.append(index)
            if callback is not None and (replaced := callback(len(indices) - 1, warps[-1])) is not None:
                if replaced.shape != warps[-1].shape:
                    raise ValueError(f"the callback's warp of level {len(indices) - 1} has shape {tuple(replaced.shape)}, expected {tuple(warps[-1].shape)}")
                warps[-1] = replaced.to(warps[-1].dtype)
        return warps, [index.permute(0, 3, 1, 2).contiguous() for index in indices]

    def forward(
        self,
        label: torch.Tensor,
        exemplar: torch.Tensor,
        exemplar_label: torch.Tensor,
        generator: Generators = None,
        return_dict: bool = True,
    ) -> CorrespondenceOutput | tuple:
        """Warp ``exemplar`` onto the structure ``label`` at every level.

        ``generator`` draws the propagation order per PatchMatch iteration (as the
        research code); without it the order is horizontal first, deterministically.
        A list of generators (one per batch item) gives each item its own orders.
        """
        check_batch("label", label, self.config.label_channels)
        check_size(*label.shape[-2:], "label")
        check_batch("exemplar", exemplar, self.config.image_channels, like=label)
        check_batch("exemplar_label", exemplar_label, self.config.label_channels, like=label)
        features = self.encode(label, exemplar, exemplar_label)
        warps, indices = self.match(features, exemplar, generator)
        output = CorrespondenceOutput(warps, indices[-1], indices, features.structure, features.exemplar)
        return output if return_dict else output.to_tuple()
