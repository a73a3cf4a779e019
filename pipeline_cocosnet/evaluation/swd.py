"""Sliced Wasserstein distance over Laplacian-pyramid patches (Karras et al., *Progressive Growing of GANs*, 2018).

The CoCosNet papers report it as a distribution distance between generated and real images.
What is computed, per set of images (all H×W, RGB):

1. a Laplacian pyramid per image: Gaussian pyramid ``G_0 = image``, ``G_{l+1} = down(blur(G_l))``
   (5×5 binomial kernel [1,4,6,4,1]²/256, mirrored borders, every second pixel) down to
   :data:`MIN_SIDE` pixels; level ``l`` is ``G_l − up(G_{l+1})`` (``up``: zeros between pixels,
   then the kernel ×4), the last level the smallest ``G``;
2. per image and level, :data:`PATCHES_PER_IMAGE` random 7×7 patches (positions drawn from a
   ``numpy`` generator seeded with ``seed``), each a 147-vector;
3. per level, every descriptor normalised by the per-channel mean and standard deviation of
   that level's patches (of this set);
4. per level, :data:`REPEATS` × :data:`DIRECTIONS` random unit directions (seeded): both sets'
   descriptors projected on each, each projection sorted, the distance the mean absolute
   difference of the sorted projections, averaged over the repeats.

Results are ×10³ (as tabulated in the literature), one per level (finest first) and their mean.
Both sets must hold the same number of images (the larger is subsampled, seeded); identical
sets give exactly 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["MIN_SIDE", "PATCH", "PATCHES_PER_IMAGE", "REPEATS", "DIRECTIONS", "laplacian_pyramid", "swd_descriptors", "sliced_wasserstein"]

MIN_SIDE = 16
PATCH = 7
PATCHES_PER_IMAGE = 128
REPEATS = 4
DIRECTIONS = 128

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
_KERNEL = (_BINOMIAL[:, None] * _BINOMIAL[None, :] / 256.0).expand(3, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), _KERNEL.to(x.dtype), groups=3)


def laplacian_pyramid(images: torch.Tensor) -> list[torch.Tensor]:
    """B×3×H×W (float64) → its Laplacian levels, finest first, down to :data:`MIN_SIDE` pixels."""
    levels, current = [], images
    while min(current.shape[-2:]) > MIN_SIDE:
        smaller = _blur(current)[..., ::2, ::2]
        up = torch.zeros_like(current)
        up[..., ::2, ::2] = smaller
        levels.append(current - 4 * _blur(up))
        current = smaller
    levels.append(current)
    return levels


def swd_descriptors(batches: Iterable[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Per level, the normalised patch descriptors (N·:data:`PATCHES_PER_IMAGE` × 147, float32) of every image.

    ``batches``: uint8 arrays B×H×W×3 of one size, in a fixed order.
    """
    rng = np.random.default_rng(seed)
    per_level: list[list[np.ndarray]] = []
    for batch in batches:
        images = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).to(torch.float64)
        for level, pyramid in enumerate(laplacian_pyramid(images)):
            b, c, h, w = pyramid.shape
            ys = rng.integers(0, h - PATCH + 1, size=(b, PATCHES_PER_IMAGE))
            xs = rng.integers(0, w - PATCH + 1, size=(b, PATCHES_PER_IMAGE))
            windows = pyramid.unfold(2, PATCH, 1).unfold(3, PATCH, 1)  # B×3×(h-6)×(w-6)×7×7
            item = torch.arange(b)[:, None]
            patches = windows.permute(0, 2, 3, 1, 4, 5)[item, torch.from_numpy(ys), torch.from_numpy(xs)]  # B×P×3×7×7
            if len(per_level) <= level:
                per_level.append([])
            per_level[level].append(patches.reshape(-1, c, PATCH, PATCH).numpy())
    descriptors = []
    for chunks in per_level:
        patches = np.concatenate(chunks)
        mean = patches.mean(axis=(0, 2, 3), keepdims=True)
        std = patches.std(axis=(0, 2, 3), keepdims=True)
        descriptors.append(((patches - mean) / np.maximum(std, 1e-12)).reshape(len(patches), -1).astype(np.float32))
    return descriptors


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """The sliced Wasserstein distance between two equally sized sets of descriptors (N×D)."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    distances = []
    for _ in range(REPEATS):
        directions = rng.standard_normal((a.shape[1], DIRECTIONS))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        projected_a = np.sort(a.astype(np.float64) @ directions, axis=0)
        projected_b = np.sort(b.astype(np.float64) @ directions, axis=0)
        distances.append(np.abs(projected_a - projected_b).mean())
    return float(np.mean(distances))
