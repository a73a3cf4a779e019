"""Reading image files with clear errors (the conversions to and from model tensors:
:class:`~pipeline_cocosnet.processing.image_processor.CoCosNetImageProcessor`)."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import StructureError

__all__ = [
    "ImageError",
    "ImageSizeError",
    "MAX_IMAGE_SIDE",
    "MAX_IMAGE_PIXELS",
    "check_image_size",
    "image_file_size",
    "open_image",
    "open_structure_file",
    "upright",
]


class ImageError(ValueError):
    """An image input that cannot be used; the message names the problem."""


class ImageSizeError(ImageError):
    """An image file larger than the limit, found from its header before any pixel is decoded."""


#: largest side (pixels) of an image file this package decodes; checked from the header
MAX_IMAGE_SIDE = 8192
#: largest pixel count (width × height) of an image file this package decodes; checked from the header
MAX_IMAGE_PIXELS = 8192 * 8192

_PIL_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def check_image_size(
    width: int, height: int, what: str = "image", max_side: int = MAX_IMAGE_SIDE, max_pixels: int = MAX_IMAGE_PIXELS
) -> None:
    """Raise :class:`ImageSizeError` naming the size and the limit when ``width``×``height`` exceeds them."""
    if max(width, height) > max_side or width * height > max_pixels:
        raise ImageSizeError(
            f"{what}: the image is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{max_side} pixels a side and {max_pixels / 1e6:.0f} megapixels"
        )


def image_file_size(
    path: str | os.PathLike, what: str = "image", *, max_side: int = MAX_IMAGE_SIDE, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`open_image` returns it (EXIF orientation applied: a
    phone photo taken upright reports its upright sides), from its header without decoding it."""
    with _opened(Path(path), what, max_side, max_pixels) as opened:
        width, height = opened.size
        return (height, width) if _orientation(opened) in _SIDES_SWAPPED else (width, height)


#: EXIF orientations (tag 0x0112) whose upright image is the stored one turned a quarter: its sides swap
_SIDES_SWAPPED = {5, 6, 7, 8}


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright as stored), read from the header."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a malformed EXIF block: treat as upright, as viewers do
        return 1


def upright(image: Image.Image) -> Image.Image:
    """The image as viewers show it: its EXIF orientation applied (phone photos are often stored sideways)."""
    if _orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


@contextlib.contextmanager
def _opened(path: Path, what: str, max_side: int, max_pixels: int) -> Iterator[Image.Image]:
    """The lazily opened (header-only) image at ``path``, its size checked; errors name ``what``."""
    if not path.is_file():
        raise ImageError(f"{what}: file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                check_image_size(*opened.size, what, max_side, max_pixels)
                yield opened
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        size = _header_size(path)  # PIL refused before handing out the size: read it from the header ourselves
        if size is not None:
            check_image_size(*size, what, max_side, max_pixels)
        found = _PIL_BOMB_PIXELS.search(str(error))
        pixels = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
        raise ImageSizeError(
            f"{what}: the image {path.name} has {pixels}; the limit is {max_side} pixels a side and "
            f"{max_pixels / 1e6:.0f} megapixels"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageError(f"{what}: cannot read {path} as an image ({error})") from None


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the header by PIL's format plugins directly (which, unlike ``Image.open``,
    do not apply the decompression-bomb check); ``None`` when no plugin reads it."""
    Image.init()
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for format_id in Image.ID:
            factory, accept = Image.OPEN[format_id]
            if accept is not None and not accept(prefix):
                continue
            fp.seek(0)
            try:
                with factory(fp, str(path)) as image:
                    return image.size
            except Exception:  # noqa: BLE001 - this plugin does not read it; try the next
                continue
    return None


def open_image(
    image: Any, what: str = "image", *, max_side: int = MAX_IMAGE_SIDE, max_pixels: int = MAX_IMAGE_PIXELS
) -> Image.Image:
    """A PIL image from a PIL image or a path, upright; unreadable files raise :class:`ImageError` naming them.

    A file's size is read from its header (PIL opens lazily) and checked against ``max_side``
    and ``max_pixels`` *before* it is decoded: a larger file raises :class:`ImageSizeError`
    naming its size and the limit, and so do PIL's decompression-bomb error and warning.
    The EXIF orientation is applied to files and to PIL images alike (as diffusers'
    ``load_image`` does), so a phone photo is read the way it is shown; this is the one place
    where the pipeline, the CLI, the app and the training readers read images.
    """
    if isinstance(image, Image.Image):
        return upright(image)
    if isinstance(image, (str, os.PathLike)):
        with _opened(Path(image), what, max_side, max_pixels) as opened:
            opened.load()
            return upright(opened.copy())
    raise ImageError(f"{what}: expected a PIL image, a path, a uint8 array or a tensor, got {type(image).__name__}")


def open_structure_file(path: str | os.PathLike, what: str) -> Image.Image:
    """A structure given as an image file (a mask, an edge map), as :func:`open_image` reads it.

    A missing or unreadable file raises :class:`~pipeline_cocosnet.processing.errors.StructureError`
    naming ``what`` and the path; a file over the size limits raises :class:`ImageSizeError`.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{what} file not found: {path}")
    try:
        return open_image(path, what)
    except ImageSizeError:
        raise
    except ImageError as error:
        raise StructureError(str(error)) from None
