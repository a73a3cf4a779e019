"""A generic paired folder for custom data::

    ROOT/structures/NAME.png|.npy    the structure of each image
    ROOT/images/NAME.jpg|.png        the image

Paired by NAME (the file stem); keys are the names. ``data.structure_format``:

* ``index``: an H×W class map (PNG of mode L/P/I, or an integer .npy) → one-hot
  ``label_channels`` channels (NEAREST resize);
* ``image``: a PNG/JPEG read as ``label_channels`` ∈ {1, 3} channels /255 (bilinear resize);
* ``tensor``: a float .npy Cl×H×W in [0, 1] (bilinear resize);
* ``auto``: float .npy → tensor, integer .npy → index, images of mode L/P/I → index when
  ``label_channels`` > 3, else image.

Reported: an image without structure, a structure without image, structure and image
of different sizes, unreadable files, channel counts that do not match the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...processing.images import ImageError, open_image
from .ade20k import one_hot, resize_mask
from .base import IMAGE_SUFFIXES, PairedDataset, SampleError, image_to_tensor, read_rgb

__all__ = ["PairedFolderDataset", "read_structure"]

STRUCTURE_SUFFIXES = (".png", ".npy", ".bmp", ".jpg", ".jpeg", ".webp")


def read_structure(path: Path, channels: int, fmt: str = "auto") -> tuple[str, np.ndarray]:
    """Read a structure file → (kind, array): ``("index", H×W)`` or ``("dense", C×H×W float32 in [0, 1])``."""
    if fmt not in ("auto", "index", "image", "tensor"):
        raise ValueError(f"data.structure_format must be auto, index, image or tensor, got {fmt!r}")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SampleError(f"cannot read structure {path}: {error}") from None
        if fmt == "index" or (fmt == "auto" and array.dtype.kind in "iub" and array.ndim == 2):
            if array.ndim != 2:
                raise SampleError(f"index structure {path} must be H×W, got shape {array.shape}")
            return "index", array
        if array.ndim != 3 or array.dtype.kind != "f":
            raise SampleError(f"structure {path} must be a float C×H×W array (or an integer H×W class map), got {array.dtype} {array.shape}")
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise SampleError(f"structure {path} must hold values in [0, 1]")
        return "dense", array.astype(np.float32)
    try:
        image = open_image(path, "training structure")
    except ImageError as error:
        raise SampleError(str(error)) from None
    index_mode = image.mode in ("L", "P", "I", "I;16")
    if fmt == "index" or (fmt == "auto" and index_mode and channels > 3):
        if not index_mode:
            raise SampleError(f"index structure {path} must be a single-channel (L, P or I) image, got mode {image.mode}")
        return "index", np.asarray(image)
    if channels not in (1, 3):
        raise SampleError(f"structure image {path} gives 1 or 3 channels, the model takes {channels}")
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255
    return "dense", array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


class PairedFolderDataset(PairedDataset):
    """Custom (structure, image) pairs from ``ROOT/structures`` and ``ROOT/images``."""

    def discover(self) -> list[str]:
        if self.root is None:
            raise SampleError("the paired dataset needs data.root (with structures/ and images/)")
        self.structures_dir, self.images_dir = self.root / "structures", self.root / "images"
        for folder in (self.structures_dir, self.images_dir):
            if not folder.is_dir():
                raise SampleError(f"paired dataset folder not found: {folder}")
        images = _by_stem(self.images_dir, IMAGE_SUFFIXES)
        structures = _by_stem(self.structures_dir, STRUCTURE_SUFFIXES)
        for stem in sorted(set(structures) - set(images)):
            self.report(str(structures[stem]), "structure without an image")
        keys = []
        for stem, path in images.items():
            if stem in structures:
                keys.append(stem)
            else:
                self.report(str(path), f"no structure {self.structures_dir / stem}.*")
        self.image_paths, self.structure_paths = images, structures
        return keys

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        photo = read_rgb(self.image_paths[key])
        path = self.structure_paths[key]
        kind, array = read_structure(path, self.label_channels, self.config.structure_format)
        if array.shape[-2:] != (photo.height, photo.width):
            raise SampleError(
                f"structure {path} is {array.shape[-1]}×{array.shape[-2]} but image {self.image_paths[key]} "
                f"is {photo.width}×{photo.height}"
            )
        if kind == "index":
            try:
                label = one_hot(resize_mask(array, size), self.label_channels)
            except SampleError as error:
                raise SampleError(f"{path}: {error}") from None
        else:
            if array.shape[0] != self.label_channels:
                raise SampleError(f"structure {path} has {array.shape[0]} channels, the model takes {self.label_channels}")
            label = torch.from_numpy(array)
            if tuple(label.shape[-2:]) != tuple(size):
                label = F.interpolate(label[None], size=size, mode="bilinear", align_corners=False)[0].clamp(0, 1)
        return label, image_to_tensor(photo, size)


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes:
            if path.stem in found:
                raise SampleError(f"two files named {path.stem} in {folder}: {found[path.stem].name} and {path.name}")
            found[path.stem] = path
    return found
