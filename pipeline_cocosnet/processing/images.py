"""Image conversions between what users pass and what the networks take."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageError", "open_image", "as_photo", "exemplar_to_tensor", "to_output"]


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


def as_photo(image: Any, what: str = "image") -> Image.Image:
    """A PIL RGB image from a PIL image, a path, a uint8 H×W×3 array or a 3×H×W float tensor in [-1, 1]."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
        return Image.fromarray(image[..., :3])
    if isinstance(image, torch.Tensor) and image.is_floating_point() and image.dim() == 3 and image.shape[0] == 3:
        array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(array)
    return open_image(image, what).convert("RGB")


def exemplar_to_tensor(
    image: Any, size: tuple[int, int], prepare=None, what: str = "exemplar", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """An exemplar as a 3×H×W tensor in [-1, 1] at ``size`` = (H, W), computed in ``dtype`` (default float32).

    PIL images, paths and uint8 H×W×3 arrays are scaled x/255·2−1 (after ``prepare``,
    which brings a PIL image to ``size``, e.g. padding to square for pose). Float
    tensors/arrays are taken as already in [-1, 1] (3×H×W) and resized bilinearly.
    A float64 ``dtype`` keeps float64 inputs exact and scales photos in float64.
    """
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ImageError(f"{what}: a uint8 array must be H×W×3 (RGB), got shape {image.shape}")
        image = Image.fromarray(image[..., :3])
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if isinstance(image, torch.Tensor):
        if image.dtype == torch.uint8:
            raise ImageError(f"{what}: uint8 tensors are ambiguous; pass a PIL image, a uint8 H×W×3 array or a float tensor in [-1, 1]")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ImageError(f"{what}: a tensor must be 3×H×W (RGB in [-1, 1]), got shape {tuple(image.shape)}")
        if image.min() < -1.001 or image.max() > 1.001:
            raise ImageError(
                f"{what}: tensor values must lie in [-1, 1], got [{image.min().item():.3g}, {image.max().item():.3g}]"
            )
        image = image.to(dtype)
        if tuple(image.shape[-2:]) != tuple(size):
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0].clamp(-1, 1)
        return image
    photo = open_image(image, what).convert("RGB")
    photo = prepare(photo, size) if prepare else photo.resize((size[1], size[0]), Image.BICUBIC)
    return torch.from_numpy(np.array(photo)).permute(2, 0, 1).to(dtype) / 255 * 2 - 1


def to_output(images: torch.Tensor, output_type: str, size: tuple[int, int] | None = None):
    """B×3×H×W in [-1, 1] → ``"pt"`` (B×3×H×W in [0, 1]), ``"np"`` (B×H×W×3 float in [0, 1]) or ``"pil"``."""
    images = (images.float() / 2 + 0.5).clamp(0, 1)
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    if output_type == "pt":
        return images.cpu()
    array = images.permute(0, 2, 3, 1).cpu().numpy()
    if output_type == "np":
        return array
    return [Image.fromarray((a * 255).round().astype(np.uint8)) for a in array]
