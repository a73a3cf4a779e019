"""Reading image files with clear errors (the conversions to and from model tensors:
:class:`~pipeline_cocosnet.processing.image_processor.CoCosNetImageProcessor`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageError", "open_image"]


class ImageError(ValueError):
    """An image input that cannot be used; the message names the problem."""


def open_image(image: Any, what: str = "image") -> Image.Image:
    """A PIL image from a PIL image or a path; unreadable files raise :class:`ImageError` naming them."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"{what}: file not found: {path}")
        try:
            with Image.open(path) as opened:
                opened.load()
                return opened.copy()
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ImageError(f"{what}: cannot read {path} as an image ({error})") from None
    raise ImageError(f"{what}: expected a PIL image, a path, a uint8 array or a tensor, got {type(image).__name__}")
