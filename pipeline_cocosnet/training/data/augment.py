"""Augmentations: random crop/flip of a (label, image) pair and the self-supervised exemplar.

All randomness comes from a ``numpy.random.Generator`` passed in, so a sample is a
pure function of (seed, epoch, index). Tensors: labels Cl×H×W in [0, 1], images 3×H×W
in [-1, 1].
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["random_crop_flip", "random_affine", "warp_affine", "color_jitter"]


def random_crop_flip(
    label: torch.Tensor, image: torch.Tensor, size: tuple[int, int], rng: np.random.Generator, flip: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size`` crop (and, with ``flip``, horizontal flip at p = 0.5) of both."""
    h, w = image.shape[-2:]
    if (h, w) != tuple(label.shape[-2:]):
        raise ValueError(f"label {tuple(label.shape[-2:])} and image {(h, w)} differ in size")
    if h < size[0] or w < size[1]:
        raise ValueError(f"cannot crop {size[0]}×{size[1]} out of {h}×{w}")
    top = int(rng.integers(0, h - size[0] + 1))
    left = int(rng.integers(0, w - size[1] + 1))
    label = label[:, top : top + size[0], left : left + size[1]]
    image = image[:, top : top + size[0], left : left + size[1]]
    if flip and rng.random() < 0.5:
        label, image = label.flip(-1), image.flip(-1)
    return label.contiguous(), image.contiguous()


def random_affine(
    rng: np.random.Generator, rotation: float = 10.0, scale: float = 0.1, translation: float = 0.05
) -> torch.Tensor:
    """A random 2×3 affine map in ``F.affine_grid``'s normalised coordinates.

    Rotation uniform in ±``rotation`` degrees, zoom in 1 ± ``scale``, shift in
    ±``translation`` of the image size (×2 in normalised units).
    """
    angle = math.radians(rng.uniform(-rotation, rotation))
    zoom = rng.uniform(1 - scale, 1 + scale)
    tx, ty = rng.uniform(-translation, translation, size=2) * 2
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    return torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=torch.float32)


def warp_affine(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample C×H×W ``x`` through the affine map ``theta`` (border padding)."""
    grid = F.affine_grid(theta[None], [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None].float(), grid, mode=mode, padding_mode="border", align_corners=False)[0]


def color_jitter(image: torch.Tensor, rng: np.random.Generator, strength: float = 0.2) -> torch.Tensor:
    """Random brightness, contrast, saturation and per-channel gain, each within ±``strength``."""
    if strength <= 0:
        return image
    x = (image + 1) / 2
    brightness, contrast, saturation = 1 + rng.uniform(-strength, strength, size=3)
    gains = torch.from_numpy(1 + rng.uniform(-strength / 2, strength / 2, size=3)).float().view(3, 1, 1)
    x = x * brightness * gains
    x = (x - _grey(x).mean()) * contrast + _grey(x).mean()
    x = (x - _grey(x)) * saturation + _grey(x)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def _grey(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
