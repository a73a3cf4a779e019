"""mask-to-image: ADE20k masks (or photos, segmented) → the 151-channel label.

The label is the one-hot encoding of the index mask (after a NEAREST resize to the
requested size): 151×H×W with channel ``k`` = 1 where the pixel's class is ``k``
(channel 0: unknown), as CoCosNet's ADE20k loader builds it (``label_nc`` 150 plus the
don't-care channel; docs/architecture.md §10). How masks are read:
:mod:`pipeline_cocosnet.processing.formats.ade20k`. A colour picture most of whose pixels
are far from every palette colour is a photo and is segmented by the segmentation backend
(:mod:`pipeline_cocosnet.processing.backends.segmentation`); ``input_format="photo"``
forces that.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..backends.segmentation import get_segmenter
from ..errors import StructureError
from ..images import open_structure_file
from ..formats.ade20k import (
    ADE20K_LABEL_CHANNELS,
    ADE20K_PALETTE,
    INDEX_MODES,
    check_indices,
    load_ade20k_mask,
    looks_like_photo,
    mask_to_palette,
    resize_mask_nearest,
)
from .base import Backend, Choice, StructureEncoder, class_colours

__all__ = ["ADE20KMaskEncoder"]


class ADE20KMaskEncoder(StructureEncoder):
    """mask-to-image (ADE20k): an index mask, a palette image or a photo → the 151-channel one-hot label.

    Args:
        input_format: how inputs are read: ``"auto"`` (the rule of :mod:`~pipeline_cocosnet.processing.formats.ade20k`;
            a colour picture that does not look like a palette image — most pixels far from
            every palette colour — is a photo and is segmented), ``"index"`` (always class
            indices), ``"palette"`` (always ADE20k colours) or ``"photo"`` (always segmented).
        segmenter: the photo segmentation backend: a ``transformers`` model id or folder
            (default :data:`~pipeline_cocosnet.processing.backends.segmentation.DEFAULT_SEGMENTATION_MODEL`) or any
            :class:`~pipeline_cocosnet.processing.backends.segmentation.Segmenter`. Resolved on the first photo.
    """

    task = "mask-to-image"
    channels = ADE20K_LABEL_CHANNELS
    option_names = ("input_format", "segmenter")

    input_format = Choice("auto", "index", "palette", "photo", doc="How inputs are read (see the class docstring).")
    segmenter = Backend(get_segmenter, doc="The photo segmenter (made on first use from the spec set).")

    def __init__(self, input_format: str = "auto", segmenter: Any = None) -> None:
        self.input_format = input_format
        self.segmenter = segmenter

    def _as_photo(self, structure: Any) -> Image.Image | None:
        """``structure`` as an RGB photo when it is to be segmented, else None."""
        if self.input_format in ("index", "palette"):
            return None
        if isinstance(structure, (str, os.PathLike)):
            structure = open_structure_file(structure, "ADE20k mask")
        if isinstance(structure, Image.Image) and structure.mode not in INDEX_MODES:
            rgb = np.asarray(structure.convert("RGB"))
        elif isinstance(structure, np.ndarray) and structure.dtype == np.uint8 and structure.ndim == 3 and structure.shape[2] in (3, 4):
            rgb = structure[..., :3]
        elif self.input_format == "photo":
            raise StructureError(
                f"{self.task}: input_format='photo' needs an RGB photo (PIL image, uint8 H×W×3 array or image "
                f"path), got {type(structure).__name__}"
            )
        else:
            return None
        if self.input_format == "photo" or looks_like_photo(rgb):
            return Image.fromarray(np.ascontiguousarray(rgb))
        return None

    def index_mask(self, structure: Any, size: tuple[int, int] | None = None) -> np.ndarray:
        """The uint8 H×W index mask of ``structure`` (a photo: segmented), NEAREST-resized to ``size`` = (H, W) when given."""
        photo = self._as_photo(structure)
        mask = self.extract(photo) if photo is not None else load_ade20k_mask(structure, self.input_format)
        return mask if size is None else resize_mask_nearest(mask, size)

    def encode(self, structure: Any, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One-hot ``151×H×W`` (exactly one 1 per pixel, at channel = class index), float32 or ``dtype``."""
        mask = torch.from_numpy(self.index_mask(structure, size).astype(np.int64))
        label = torch.zeros(self.channels, *mask.shape, dtype=dtype)
        return label.scatter_(0, mask[None], 1.0)

    def render(self, structure: Any, size: tuple[int, int]) -> Image.Image:
        """The mask in ADE20k palette colours at ``size`` (unknown: black)."""
        return mask_to_palette(self.index_mask(structure, size))

    @classmethod
    def label_picture(cls, label: torch.Tensor) -> torch.Tensor:
        """B×151×H×W one-hot labels → B×3×H×W in [0, 1], in the ADE20k palette colours (class 0 black)."""
        return class_colours(label.float(), torch.tensor([(0, 0, 0), *ADE20K_PALETTE], dtype=torch.float32) / 255)

    def extract(self, photo: Image.Image) -> np.ndarray:
        """The photo's ADE20k index mask (uint8 H×W at the photo's size, 0..150) from the segmenter."""
        mask = np.asarray(self.segmenter(photo.convert("RGB")))
        return check_indices(mask)
