"""Building blocks shared by the correspondence and translation networks.

Everything here follows docs/architecture.md §2–§3: SPADE with *positional* normalisation, the
SPADE residual block, the reflect-padded residual block with one shared PReLU,
and the spectrally normalised convolution (stored folded at inference).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SNConv2d",
    "ResBlock",
    "SPADE",
    "SPADEResBlock",
    "InstanceNorm",
    "instance_norm",
    "positional_norm",
    "channel_layer_norm",
    "normalize_channels",
    "resize_nearest",
    "upsample_bilinear",
    "conv2d_activation",
]

#: activation(x) for the names oneDNN takes as a convolution post-op
ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def _fused_activation_supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """CPU inference in float32/bf16 with oneDNN and its pointwise-fused convolution available."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and x.dtype in (torch.float32, torch.bfloat16)
        and weight.dtype == x.dtype
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    )


def conv2d_activation(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int], activation: str
) -> torch.Tensor:
    """``activation(F.conv2d(x, weight, bias, padding=padding))``, activation ∈ relu / sigmoid / tanh.

    x: B×Cin×h×w; returns B×Cout×h×w in x's dtype and memory format. On CPU inference in float32
    and bf16 this is one oneDNN convolution with the activation applied as a post-op (on the
    float32 accumulator, before rounding: no second pass over the output, and ATen's bf16
    activations are slow — tanh 10× float32's time). Elsewhere (float64, fp16, CUDA, autograd)
    the two plain ops. ``tests/test_fast_paths.py`` checks both agree.
    """
    if _fused_activation_supported(x, weight):
        padding = list(padding)
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, [1, 1], [1, 1], 1, activation, [], "")
    return ACTIVATIONS[activation](F.conv2d(x, weight, bias, padding=padding))


def conv_activation(conv: nn.Conv2d, x: torch.Tensor, activation: str) -> torch.Tensor:
    """``activation(conv(x))`` for a stride-1 ``nn.Conv2d`` (reflect padding applied first), via :func:`conv2d_activation`."""
    padding = conv.padding
    if conv.padding_mode != "zeros":
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        padding = (0, 0)
    return conv2d_activation(x, conv.weight, conv.bias, padding, activation)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm without affine: per sample and channel, (x − mean_hw) / sqrt(biased var_hw + eps).

    x: B×C×h×w, any float dtype; returns the same shape, dtype and memory format.
    ``F.instance_norm`` folds B into C, which turns a channels-last map into an NCHW copy
    (and the next convolution converts it back). Channels-last maps stay channels-last here:

    * bf16/fp16: per sample, instance norm *is* batch norm over the positions, whose CPU
      kernel reads channels-last directly and accumulates in float32 without a float32
      copy of the map (the result is rounded to bf16 once, as ``F.instance_norm``'s);
    * float32: two-pass statistics (``var_mean``) and one fused ``x·rstd − mean·rstd``
      (the batch-norm kernel's single-pass variance is ~100× less accurate in float32 on
      offset inputs, README "Performance").

    Other layouts (NCHW, the float64 parity runs) go through ``F.instance_norm``.
    """
    if x.dim() != 4 or x.shape[1] == 1 or not x.is_contiguous(memory_format=torch.channels_last):
        return F.instance_norm(x, eps=eps)
    if x.dtype in (torch.bfloat16, torch.float16):
        if x.shape[0] == 1:
            return F.batch_norm(x, None, None, training=True, eps=eps)
        return torch.cat([F.batch_norm(x[i : i + 1], None, None, training=True, eps=eps) for i in range(x.shape[0])])
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    rstd = var.add_(eps).rsqrt_()
    return torch.addcmul(mean.mul_(rstd).neg_(), x, rstd)


class InstanceNorm(nn.Module):
    """:func:`instance_norm` as a module (no parameters, like ``nn.InstanceNorm2d()`` without affine)."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.eps)


def positional_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel over channels: (x − mean) / sqrt(unbiased var + eps)."""
    normalized, scale = channel_layer_norm(x, eps)
    return normalized * scale


def channel_layer_norm(x: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, float]:
    """Positional norm as a fused channel LayerNorm: (n, s) with positional_norm(x) = s · n.

    LayerNorm divides by the biased deviation; with C channels
    sqrt(var_unbiased + eps) = sqrt(var_biased + eps·(C−1)/C) / s, where s = sqrt((C−1)/C).
    On channels-last ``x`` the B×h×w×C view is contiguous, so this is one pass, no copies.
    """
    c = x.shape[1]
    normalized = F.layer_norm(x.permute(0, 2, 3, 1), (c,), eps=eps * (c - 1) / c)
    return normalized.permute(0, 3, 1, 2), math.sqrt((c - 1) / c)


def normalize_channels(x: torch.Tensor, center: bool = False, eps: float = 1e-10) -> torch.Tensor:
    """Divide each pixel's channel vector by (its L2 norm + eps), optionally after centring it.

    x: B×C×h×w; returns unit-norm (or zero) channel vectors, same shape and dtype. ``eps`` is
    raised to the dtype's smallest normal number where it would underflow (fp16: 1e-10 → 0,
    so a zero vector gave 0/0 = NaN); float32, float64 and bf16 keep the published 1e-10.
    """
    if center:
        x = x - x.mean(dim=1, keepdim=True)
    eps = max(eps, torch.finfo(x.dtype).tiny)
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


def resize_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Legacy nearest resize (source index = floor(dst · in/out)), as the published code."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="nearest")


def upsample_bilinear(x: torch.Tensor) -> torch.Tensor:
    """Bilinear ×2 with ``align_corners=True``."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class SNConv2d(nn.Conv2d):
    """A convolution trained under spectral normalisation.

    At inference it is a plain convolution holding the folded weight W_orig/σ
    (see :func:`pipeline_cocosnet.convert.fold_spectral_norm`). Training code wraps
    every ``SNConv2d`` with ``torch.nn.utils.parametrizations.spectral_norm``.
    """


class ResBlock(nn.Module):
    """y = IN(conv(pad(PReLU(IN(conv(pad(x))))))); out = PReLU(x + y), one shared PReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_0 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv_1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.prelu(instance_norm(self.conv_0(x)))
        y = instance_norm(self.conv_1(y))
        return self.prelu(x + y)


class SPADE(nn.Module):
    """Spatially-adaptive (de)normalisation with positional norm (docs/architecture.md §3)::

        a = ReLU(conv_shared(resize_nearest(cond)))
        out = positional_norm(x) · (1 + conv_γ(a)) + conv_β(a)

    Fused for speed: the positional norm is one channel LayerNorm rescaled (:func:`channel_layer_norm`),
    γ and β are one convolution with the 1 folded into γ's bias (:meth:`modulation`), and the sum is
    one ``addcmul``. ``tests/test_models.py`` and ``tests/test_fast_paths.py`` check the plain equation.
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 128):
        super().__init__()
        self.mlp_shared = nn.Conv2d(cond_channels, hidden, 3, padding=1, padding_mode="reflect")
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1, padding_mode="reflect")
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # the hidden-wide activation lives only until it is padded, and the padded copy only until γ and β exist:
        # at full resolution each is a large tensor (the translator's peak memory is in its last SPADEs)
        padded = F.pad(conv_activation(self.mlp_shared, resize_nearest(cond, x.shape[-2:]), "relu"), (1, 1, 1, 1), mode="reflect")
        gain, beta = self.modulation(padded)
        del padded
        normalized, scale = channel_layer_norm(x)
        if torch.is_grad_enabled():
            return torch.addcmul(beta, normalized, gain, value=scale)  # β + positional_norm(x)·(1 + γ)
        # inference: the same values written over the normalised map (one full-size tensor fewer at the peak)
        return torch.addcmul(beta, normalized, gain, value=scale, out=normalized)

    def modulation(self, padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """1 + γ and β from the shared activation, already reflection-padded by one pixel.

        One convolution, as both read the same padded input; the 1 is folded into γ's bias.
        """
        weight = torch.cat([self.mlp_gamma.weight, self.mlp_beta.weight])
        bias = torch.cat([self.mlp_gamma.bias + 1, self.mlp_beta.bias])
        return F.conv2d(padded, weight, bias).chunk(2, dim=1)


class SPADEResBlock(nn.Module):
    """SPADE residual block (fin → fout); learned 1×1 shortcut when the width changes."""

    def __init__(self, fin: int, fout: int, cond_channels: int, hidden: int = 128):
        super().__init__()
        fmid = min(fin, fout)
        self.norm_0 = SPADE(fin, cond_channels, hidden)
        self.conv_0 = SNConv2d(fin, fmid, 3, padding=1, padding_mode="reflect")
        self.norm_1 = SPADE(fmid, cond_channels, hidden)
        self.conv_1 = SNConv2d(fmid, fout, 3, padding=1, padding_mode="reflect")
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, cond_channels, hidden)
            self.conv_s = SNConv2d(fin, fout, 1, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        cond = resize_nearest(cond, x.shape[-2:])  # once for the block's two or three SPADEs
        shortcut = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        # the SPADE outputs are fresh tensors: the activations overwrite them
        dx = self.conv_0(F.leaky_relu_(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu_(self.norm_1(dx, cond), 0.2))
        return dx.add_(shortcut) if not torch.is_grad_enabled() else shortcut + dx
