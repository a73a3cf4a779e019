"""The image processor: photos, arrays and tensors ↔ the networks' image tensors, in one place.

The pipeline, the app and the training readers all convert through :class:`CoCosNetImageProcessor`
(the role diffusers' ``VaeImageProcessor`` plays for its pipelines). Model images are
3×H×W float tensors in [-1, 1], x/255·2−1 of 8-bit RGB (docs/architecture.md §1); pipeline
outputs are in [0, 1].
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .images import ImageError, open_image

__all__ = ["CoCosNetImageProcessor", "OUTPUT_TYPES"]

#: what ``postprocess`` returns: PIL images, a B×H×W×3 array or a B×3×H×W tensor, all in [0, 1]
OUTPUT_TYPES = ("pil", "np", "pt")

#: brings a PIL photo to (H, W) the way a task's training data was (e.g. padding to square for poses)
Prepare = Callable[[Image.Image, tuple[int, int]], Image.Image]


class CoCosNetImageProcessor:
    """Conversions between user images and model tensors.

    Args:
        resample: PIL filter used to resize photos to the working size (bicubic, as training).
    """

    def __init__(self, resample: int = Image.BICUBIC):
        self.resample = resample

    def to_photo(self, image: Any, what: str = "image") -> Image.Image:
        """A PIL RGB image from a PIL image, a path, a uint8 H×W×3 array or a 3×H×W float tensor in [-1, 1]."""
        if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
            return Image.fromarray(image[..., :3])
        if isinstance(image, torch.Tensor) and image.is_floating_point() and image.dim() == 3 and image.shape[0] == 3:
            array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            return Image.fromarray(array)
        return open_image(image, what).convert("RGB")

    def photo_to_tensor(self, photo: Image.Image, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A PIL photo as it is → 3×H×W in [-1, 1] (x/255·2−1, computed in ``dtype``)."""
        return torch.from_numpy(np.array(photo.convert("RGB"))).permute(2, 0, 1).to(dtype) / 255 * 2 - 1

    def preprocess(
        self,
        image: Any,
        size: tuple[int, int] | None = None,
        prepare: Prepare | None = None,
        what: str = "exemplar",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """An image as a 3×H×W tensor in [-1, 1] at ``size`` = (H, W) (``None``: its own size), in ``dtype``.

        PIL images, paths and uint8 H×W×3 arrays are brought to ``size`` by ``prepare`` (when
        given) or resized with :attr:`resample`, then scaled x/255·2−1. Float tensors and arrays
        are taken as already in [-1, 1] (3×H×W) and resized bilinearly. A float64 ``dtype``
        keeps float64 inputs exact and scales photos in float64.

        Raises:
            ImageError: the input is of a kind, shape or range that cannot be an image.
        """
        if isinstance(image, np.ndarray) and image.dtype == np.uint8:
            if image.ndim != 3 or image.shape[2] not in (3, 4):
                raise ImageError(f"{what}: a uint8 array must be H×W×3 (RGB), got shape {image.shape}")
            image = Image.fromarray(image[..., :3])
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(image)
        if isinstance(image, torch.Tensor):
            return self._tensor_image(image, size, what, dtype)
        photo = open_image(image, what).convert("RGB")
        if size is not None:
            photo = prepare(photo, size) if prepare else photo.resize((size[1], size[0]), self.resample)
        return self.photo_to_tensor(photo, dtype)

    @staticmethod
    def _tensor_image(image: torch.Tensor, size: tuple[int, int] | None, what: str, dtype: torch.dtype) -> torch.Tensor:
        if image.dtype == torch.uint8:
            raise ImageError(f"{what}: uint8 tensors are ambiguous; pass a PIL image, a uint8 H×W×3 array or a float tensor in [-1, 1]")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ImageError(f"{what}: a tensor must be 3×H×W (RGB in [-1, 1]), got shape {tuple(image.shape)}")
        if image.min() < -1.001 or image.max() > 1.001:
            raise ImageError(
                f"{what}: tensor values must lie in [-1, 1], got [{image.min().item():.3g}, {image.max().item():.3g}]"
            )
        image = image.to(dtype)
        if size is not None and tuple(image.shape[-2:]) != tuple(size):
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0].clamp(-1, 1)
        return image

    def postprocess(
        self, images: torch.Tensor, output_type: str = "pil", size: tuple[int, int] | None = None
    ) -> list[Image.Image] | np.ndarray | torch.Tensor:
        """B×3×H×W in [-1, 1] → ``"pt"`` (B×3×H×W in [0, 1]), ``"np"`` (B×H×W×3 in [0, 1]) or ``"pil"``.

        ``size`` = (H, W) resizes (bicubic) to another size first.
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        images = (images.float() / 2 + 0.5).clamp(0, 1)
        if size is not None and tuple(images.shape[-2:]) != tuple(size):
            images = F.interpolate(images, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
        if output_type == "pt":
            return images.cpu()
        array = images.permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "np":
            return array
        return [Image.fromarray((a * 255).round().astype(np.uint8)) for a in array]
