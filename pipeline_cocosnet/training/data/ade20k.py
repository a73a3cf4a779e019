"""ADE20k (mask-to-image), the SceneParsing layout (``ADEChallengeData2016``)::

    ROOT/images/training/ADE_train_00000001.jpg
    ROOT/annotations/training/ADE_train_00000001.png   index mask: 0 = other, 1..150

Image and mask are paired by file stem; a photo without mask, a mask without photo
and a mask whose size differs from its photo's are reported, never paired otherwise.
Labels are the 151-channel one-hot encoding of
:class:`~pipeline_cocosnet.processing.encoders.mask.ADE20KMaskEncoder` (NEAREST resize).
Keys are the stems.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ...processing.errors import StructureError
from ...processing.formats.ade20k import ADE20K_LABEL_CHANNELS, load_ade20k_mask
from .base import IMAGE_SUFFIXES, PairedDataset, SampleError, image_to_tensor, read_rgb

__all__ = ["ADE20kDataset", "one_hot"]


def one_hot(mask: np.ndarray, channels: int) -> torch.Tensor:
    """H×W integer class map → float32 channels×H×W one-hot; values ≥ channels raise SampleError."""
    index = torch.from_numpy(mask.astype(np.int64))
    if index.min() < 0 or index.max() >= channels:
        raise SampleError(f"class index {int(index.max())} out of range for {channels} label channels")
    return torch.zeros(channels, *index.shape).scatter_(0, index[None], 1.0)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """NEAREST resize of an integer mask to ``size`` = (H, W)."""
    if mask.shape == tuple(size):
        return mask
    return np.asarray(Image.fromarray(mask.astype(np.int32)).resize((size[1], size[0]), Image.NEAREST))


class ADE20kDataset(PairedDataset):
    """ADE20k photos + index masks → 151-channel one-hot labels."""

    def discover(self) -> list[str]:
        split = self.config.split
        if self.root is None:
            raise SampleError("ADE20k needs data.root (the ADEChallengeData2016 folder)")
        self.images_dir = self.root / "images" / split
        self.masks_dir = self.root / "annotations" / split
        for folder in (self.images_dir, self.masks_dir):
            if not folder.is_dir():
                raise SampleError(f"ADE20k folder not found: {folder} (expected ROOT/images/{split} and ROOT/annotations/{split})")
        if self.label_channels != ADE20K_LABEL_CHANNELS:
            raise ValueError(f"ADE20k labels have {ADE20K_LABEL_CHANNELS} channels; set model.label_channels: 151")
        images = {p.stem: p for p in sorted(self.images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        masks = {p.stem: p for p in sorted(self.masks_dir.iterdir()) if p.suffix.lower() == ".png"}
        for stem in sorted(set(masks) - set(images)):
            self.report(str(masks[stem]), "mask without a photo")
        keys = []
        for stem, path in images.items():
            if stem in masks:
                keys.append(stem)
            else:
                self.report(str(path), f"no mask {self.masks_dir / (stem + '.png')}")
        self.image_paths, self.mask_paths = images, masks
        return keys

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        photo = read_rgb(self.image_paths[key])
        try:
            mask = load_ade20k_mask(self.mask_paths[key], "index")
        except StructureError as error:
            raise SampleError(str(error)) from None
        if mask.shape != (photo.height, photo.width):
            raise SampleError(
                f"mask {self.mask_paths[key]} is {mask.shape[1]}×{mask.shape[0]} but photo "
                f"{self.image_paths[key]} is {photo.width}×{photo.height}"
            )
        return one_hot(resize_mask(mask, size), self.label_channels), image_to_tensor(photo, size)
