"""Tiny procedural data: textured shapes on a textured background, with their label maps.

Class 0 is the background; classes 1..C−1 each have their own texture kind (stripes,
checks, dots, rings, …) drawn in colours chosen per scene, so an exemplar's appearance
matters and the structure alone does not give it. A scene is a pure function of its
seed. :class:`SyntheticShapesDataset` serves scenes in memory;
:func:`write_synthetic_folder` writes them in the generic paired layout.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from .ade20k import one_hot
from .base import PairedDataset, image_to_tensor

__all__ = ["make_scene", "write_synthetic_folder", "SyntheticShapesDataset"]


def _texture(kind: int, size: tuple[int, int], colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An H×W×3 uint8 texture of ``kind`` mixing two colours."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(4, 9)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    patterns = [
        lambda: (y + x) / (h + w),  # smooth gradient (background)
        lambda: (np.sin(2 * np.pi * u / period) > 0).astype(np.float32),  # stripes
        lambda: ((x // period + y // period) % 2).astype(np.float32),  # checks
        lambda: ((np.hypot((x % period) - period / 2, (y % period) - period / 2) < period / 3)).astype(np.float32),  # dots
        lambda: (np.sin(np.hypot(x - w / 2, y - h / 2) / period * 2 * np.pi) > 0).astype(np.float32),  # rings
    ]
    mix = patterns[kind % len(patterns)]()[..., None]
    return (colours[0] * (1 - mix) + colours[1] * mix).astype(np.uint8)


def make_scene(seed: int, size: tuple[int, int] = (64, 64), num_classes: int = 4, max_shapes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (uint8 H×W class map with values 0..num_classes−1, uint8 H×W×3 RGB image).

    Deterministic per ``seed``: 1..``max_shapes`` circles, rectangles and triangles of
    random classes ≥ 1, each filled with its class's texture.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    image = _texture(0, size, rng.integers(0, 256, size=(2, 3)), rng)
    textures = {c: _texture(c, size, rng.integers(0, 256, size=(2, 3)), rng) for c in range(1, num_classes)}
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        cls = int(rng.integers(1, num_classes))
        shape = np.zeros((h, w), np.uint8)
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        r = rng.uniform(0.12, 0.3) * min(h, w)
        kind = int(rng.integers(3))
        if kind == 0:
            cv2.circle(shape, (int(cx), int(cy)), int(r), 1, -1)
        elif kind == 1:
            cv2.rectangle(shape, (int(cx - r), int(cy - r * 0.7)), (int(cx + r), int(cy + r * 0.7)), 1, -1)
        else:
            angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2])
            points = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1).astype(np.int32)
            cv2.fillConvexPoly(shape, points, 1)
        inside = shape.astype(bool)
        mask[inside] = cls
        image[inside] = textures[cls][inside]
    return mask, image


def write_synthetic_folder(
    root: str | Path, count: int, size: tuple[int, int] = (64, 64), num_classes: int = 4, seed: int = 0
) -> Path:
    """Write ``count`` scenes as ``root/structures/NNNN.png`` (index masks) and ``root/images/NNNN.png``."""
    root = Path(root)
    (root / "structures").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        mask, image = make_scene(seed + i, size, num_classes)
        Image.fromarray(mask).save(root / "structures" / f"{i:04d}.png")
        Image.fromarray(image).save(root / "images" / f"{i:04d}.png")
    return root


class SyntheticShapesDataset(PairedDataset):
    """``data.num_samples`` procedural scenes (``data.num_classes`` classes, one-hot labels), generated on the fly."""

    def discover(self) -> list[str]:
        if self.label_channels != self.config.num_classes:
            raise ValueError(
                f"synthetic labels have data.num_classes = {self.config.num_classes} channels but "
                f"model.label_channels is {self.label_channels}"
            )
        return [str(i) for i in range(self.config.num_samples)]

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        mask, image = make_scene(self.config.seed * 100_003 + int(key), size, self.config.num_classes)
        return one_hot(mask, self.label_channels), image_to_tensor(Image.fromarray(image))
