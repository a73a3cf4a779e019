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
    "reflect_conv2d",
    "Conv2d",
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


#: the smallest map side (per dtype) where :func:`reflect_conv2d` recomputes the border lines instead
#: of convolving a reflect-padded copy. Measured on a 2-core AMX Xeon, one 3×3 convolution, copy time /
#: strip time: float32 0.46 (16², 1024 channels), 0.84–0.94 (64²–128²), 0.99–1.09 (256²), 1.23 (512²);
#: bf16 0.45, 0.94–1.02, 0.75–1.00, 1.47 (docs/cpu-speed.md)
REFLECT_STRIPS_MIN_SIDE = {torch.float32: 192, torch.bfloat16: 384}


def reflect_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str | None = None
) -> torch.Tensor:
    """A 3×3 stride-1 convolution after one pixel of reflect padding: ``act(F.conv2d(F.pad(x, (1, 1, 1, 1),
    "reflect"), weight, bias))`` (``act``: relu / sigmoid / tanh, or none).

    x: B×Cin×h×w (h, w ≥ 2); returns B×Cout×h×w. On CPU inference in float32 and bf16 the padded copy
    of x is never made (oneDNN has no reflect padding, and at full resolution the copy cost as much as
    a small convolution): the convolution runs zero-padded over the whole map, which is exact except on
    the four border lines, and those are recomputed from reflect-padded strips of three rows (columns)
    and written over it — on maps at least ``REFLECT_STRIPS_MIN_SIDE`` on each side; on smaller ones
    the two strip convolutions cost more than the copy (docs/cpu-speed.md). Elsewhere (float64, CUDA,
    autograd) the plain equation. ``tests/test_fast_paths.py`` checks both agree.
    """
    if not _fused_activation_supported(x, weight) or torch.is_autocast_enabled("cpu"):  # autocast: its own dtypes
        out = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, bias)
        return out if activation is None else ACTIVATIONS[activation](out)
    h, w = x.shape[-2:]
    strips = min(h, w) >= REFLECT_STRIPS_MIN_SIDE[x.dtype]  # below, two extra convolutions cost more than the copy
    source, padding = (x, (1, 1)) if strips else (F.pad(x, (1, 1, 1, 1), mode="reflect"), (0, 0))
    if activation is None:
        out = F.conv2d(source, weight, bias, padding=padding)
    else:
        out = conv2d_activation(source, weight, bias, padding, activation)
    if not strips:
        return out
    # rows −1, 0, 1 and h−2, h−1, h: the windows of output rows 0 and h−1 (stride 3 picks just those two)
    rows = F.pad(x[:, :, [1, 0, 1, h - 2, h - 1, h - 2], :], (1, 1, 0, 0), mode="reflect")
    cols = F.pad(x[:, :, :, [1, 0, 1, w - 2, w - 1, w - 2]], (0, 0, 1, 1), mode="reflect")
    edges = [F.conv2d(rows, weight, bias, stride=(3, 1)), F.conv2d(cols, weight, bias, stride=(1, 3))]
    if activation is not None:
        edges = [ACTIVATIONS[activation](edge) for edge in edges]
    out[:, :, [0, h - 1], :] = edges[0]
    out[:, :, :, [0, w - 1]] = edges[1]
    return out


def _is_reflect_3x3(conv: nn.Conv2d) -> bool:
    return (
        conv.padding_mode == "reflect" and conv.kernel_size == (3, 3) and conv.padding == (1, 1)
        and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
    )  # fmt: skip


def conv_activation(conv: nn.Conv2d, x: torch.Tensor, activation: str) -> torch.Tensor:
    """``activation(conv(x))`` for a stride-1 ``nn.Conv2d`` (reflect padding: :func:`reflect_conv2d`), via
    :func:`conv2d_activation`."""
    if _is_reflect_3x3(conv):
        return reflect_conv2d(x, conv.weight, conv.bias, activation)
    padding = conv.padding
    if conv.padding_mode != "zeros":
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        padding = (0, 0)
    return conv2d_activation(x, conv.weight, conv.bias, padding, activation)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose 3×3 reflect-padded form runs as :func:`reflect_conv2d` (no padded copy at inference)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _is_reflect_3x3(self):
            return reflect_conv2d(x, self.weight, self.bias)
        return super().forward(x)


#: float32 instance norm: elements per chunk of the centred second pass (1 MiB: stays in L2 between the two steps)
STATISTICS_CHUNK = 1 << 18


def instance_statistics(x: torch.Tensor, chunk_elements: int = STATISTICS_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample and channel of a channels-last float map, ``(biased var_hw, mean_hw)``, both B×C×1×1.

    Two passes, as ``torch.var_mean`` (the same values to float32 rounding) but 3–7× faster on
    channels-last maps: mean = Σx/n, then var = Σ(x − mean)²/n over chunks of positions (each chunk's
    sum in x's dtype, the chunks' sum in float64), reading the map as the B×(h·w)×C view it is in memory.
    """
    b, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: channels-last memory is position-major
    mean = rows.mean(dim=1, keepdim=True)
    squares = torch.zeros(b, 1, c, dtype=torch.float64, device=x.device)
    step = max(1, chunk_elements // c)
    in_place = not (torch.is_grad_enabled() and x.requires_grad)  # autograd keeps the centred chunk for the backward
    for start in range(0, h * w, step):
        centred = rows[:, start : start + step] - mean
        squares += (centred.mul_(centred) if in_place else centred.square()).sum(dim=1, keepdim=True)
    var = (squares / (h * w)).to(x.dtype)
    return var.view(b, c, 1, 1), mean.view(b, c, 1, 1)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm without affine: per sample and channel, (x − mean_hw) / sqrt(biased var_hw + eps).

    x: B×C×h×w, any float dtype; returns the same shape, dtype and memory format.
    ``F.instance_norm`` folds B into C, which turns a channels-last map into an NCHW copy
    (and the next convolution converts it back). Channels-last maps stay channels-last here:

    * bf16/fp16: per sample, instance norm *is* batch norm over the positions, whose CPU
      kernel reads channels-last directly and accumulates in float32 without a float32
      copy of the map (the result is rounded to bf16 once, as ``F.instance_norm``'s);
    * float32: two-pass statistics (:func:`instance_statistics` on CPU, ``var_mean`` elsewhere) and
      one fused ``x·rstd − mean·rstd`` (the batch-norm kernel's single-pass variance is ~100× less
      accurate in float32 on offset inputs, README "Performance").

    Other layouts (NCHW, the float64 parity runs) go through ``F.instance_norm``.
    """
    if x.dim() != 4 or x.shape[1] == 1 or not x.is_contiguous(memory_format=torch.channels_last):
        return F.instance_norm(x, eps=eps)
    if x.dtype in (torch.bfloat16, torch.float16):
        if x.shape[0] == 1:
            return F.batch_norm(x, None, None, training=True, eps=eps)
        return torch.cat([F.batch_norm(x[i : i + 1], None, None, training=True, eps=eps) for i in range(x.shape[0])])
    if x.device.type == "cpu":
        var, mean = instance_statistics(x)
    else:  # one kernel on a GPU, where the chunk loop would be dozens of small launches
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


class SNConv2d(Conv2d):
    """A convolution trained under spectral normalisation.

    At inference it is a plain convolution holding the folded weight W_orig/σ
    (see :func:`pipeline_cocosnet.convert.fold_spectral_norm`). Training code wraps
    every ``SNConv2d`` with ``torch.nn.utils.parametrizations.spectral_norm``.
    """


class ResBlock(nn.Module):
    """y = IN(conv(pad(PReLU(IN(conv(pad(x))))))); out = PReLU(x + y), one shared PReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_0 = Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv_1 = Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
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
        # the hidden-wide activation lives only until γ and β exist: at full resolution it is a large tensor
        # (the translator's peak memory is in its last SPADEs)
        activation = conv_activation(self.mlp_shared, resize_nearest(cond, x.shape[-2:]), "relu")
        gain, beta = self.modulation(activation)
        del activation
        normalized, scale = channel_layer_norm(x)
        if torch.is_grad_enabled():
            return torch.addcmul(beta, normalized, gain, value=scale)  # β + positional_norm(x)·(1 + γ)
        # inference: the same values written over the normalised map (one full-size tensor fewer at the peak)
        return torch.addcmul(beta, normalized, gain, value=scale, out=normalized)

    def modulation(self, activation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """1 + γ and β from the shared activation.

        One (reflect-padded) convolution, as both read the same input; the 1 is folded into γ's bias.
        """
        weight = torch.cat([self.mlp_gamma.weight, self.mlp_beta.weight])
        bias = torch.cat([self.mlp_gamma.bias + 1, self.mlp_beta.bias])
        return reflect_conv2d(activation, weight, bias).chunk(2, dim=1)


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
