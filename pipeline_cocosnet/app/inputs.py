"""Turning what the demo's components deliver into pipeline inputs, with a ``gr.Error`` naming each problem.

Translate events run with ``preprocess=False``: the handlers get the raw upload payloads
and open the files themselves, so a corrupt or unreadable upload becomes a clear message
instead of Gradio's generic "Error".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ..processing.errors import StructureError
from ..processing.formats.ade20k import (
    ADE20K_PALETTE,
    is_palette_rgb,
    load_ade20k_mask,
    mask_to_indexed_palette,
    mask_to_palette,
)
from ..processing.images import ImageError, ImageSizeError, image_file_size, open_image

__all__ = ["MIN_SIDE", "MAX_SIDE", "check_upload_size", "index_mask_preview", "upload_path", "upload_paths", "read_image", "editor_structure", "snap_to_palette"]

#: accepted upload sides in pixels (smaller cannot hold a structure, larger only costs memory)
MIN_SIDE = 16
MAX_SIDE = 4096
#: an image with more distinct colours than this that is not a valid mask is taken for a photo
PHOTO_COLOURS = 512


def upload_path(payload: Any) -> str | None:
    """The local file path of one uploaded file payload (a FileData dict, a path string or ``None``)."""
    if payload is None:
        return None
    if isinstance(payload, (str, Path)):
        return str(payload)
    if isinstance(payload, dict):
        return payload.get("path")
    return getattr(payload, "path", None)


def upload_paths(payload: Any) -> list[tuple[str, str]]:
    """``(path, original name)`` of every file in a single- or multi-file upload payload."""
    if payload is None:
        return []
    items = payload if isinstance(payload, list) else [payload]
    files = []
    for item in items:
        path = upload_path(item)
        if path:
            name = item.get("orig_name") if isinstance(item, dict) else None
            files.append((path, name or Path(path).name))
    return files


def check_image_sides(image: Image.Image, what: str) -> Image.Image:
    """A decoded upload whose sides lie in [MIN_SIDE, MAX_SIDE], else ``gr.Error`` naming its size.

    (The working size the model runs at is checked by ``models/inputs.py``'s ``check_size``.)
    """
    width, height = image.size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise gr.Error(
            f"{what}: the image is {width}×{height} pixels; uploads must be between {MIN_SIDE} and {MAX_SIDE} "
            f"pixels on each side"
        )
    return image


def check_upload_size(payload: Any, what: str) -> None:
    """Check the header of every file in an upload payload (a FileData, an ImageEditor value, …) before anything decodes it.

    Raises ``gr.Error`` naming the size and the limit for a file over :data:`MAX_SIDE`;
    unreadable files are left to the reader, which names them.
    """
    if isinstance(payload, dict):
        if isinstance(payload.get("path"), str):
            try:
                image_file_size(payload["path"], what, max_side=MAX_SIDE, max_pixels=MAX_SIDE * MAX_SIDE)
            except ImageSizeError as error:
                raise gr.Error(f"{error}; make it smaller and upload it again") from None
            except ImageError:
                pass
        for value in payload.values():
            if isinstance(value, (dict, list)):
                check_upload_size(value, what)
    elif isinstance(payload, list):
        for item in payload:
            check_upload_size(item, what)


#: ADE20k's skyscraper, drawn in road's colour by the palette: masks holding it are not recoloured as RGB
_SKYSCRAPER = 49


def index_mask_preview(image: Image.Image | np.ndarray, *, rgb: bool = False) -> Image.Image | np.ndarray | None:
    """An index mask (grey: class ids as grey levels, near black on screen) in the ADE20k colours, or ``None``
    when ``image`` is no index mask (a palette mask or a photo, already colourful).

    Returns a ``P``-mode image holding the same class ids (lossless), or with ``rgb`` an H×W×3 uint8 palette
    picture — ``None`` then also for masks with skyscrapers (49), which the palette draws in road's colour.
    """
    if isinstance(image, Image.Image):
        if image.mode == "P":
            palette = np.asarray(image.getpalette() or [], dtype=np.int32).reshape(-1, 3)
            if not ((palette[:, 0] == palette[:, 1]).all() and (palette[:, 1] == palette[:, 2]).all()):
                return None  # a coloured palette PNG: shown as it is
            values = np.asarray(image)
            array = palette[values, 0].astype(np.uint8) if len(palette) else values
        elif image.mode in ("L", "I", "I;16"):
            array = np.asarray(image)
        else:
            array = np.asarray(image.convert("RGB"))
    else:
        array = np.asarray(image)
    if array.ndim == 3:
        colour = array[..., :3]
        if is_palette_rgb(colour):
            return None
        array = colour[..., 0]
    try:
        mask = load_ade20k_mask(array)
    except StructureError:
        return None
    if rgb:
        return None if (mask == _SKYSCRAPER).any() else np.asarray(mask_to_palette(mask))
    return mask_to_indexed_palette(mask)


def read_image(payload: Any, what: str, *, required: bool = True, photo: bool = True) -> Image.Image | None:
    """Open an uploaded image, upright (``open_image`` applies the EXIF orientation); ``photo`` converts
    to RGB (masks keep their mode)."""
    path = upload_path(payload)
    if path is None:
        if required:
            raise gr.Error(f"{what}: nothing uploaded")
        return None
    try:
        image = open_image(path, what, max_side=MAX_SIDE, max_pixels=MAX_SIDE * MAX_SIDE)
    except ImageSizeError as error:
        raise gr.Error(f"{error}; make it smaller and upload it again") from None
    except ImageError:
        name = payload.get("orig_name") if isinstance(payload, dict) else None
        raise gr.Error(f"{what}: cannot read the upload{f' {name!r}' if name else ''} as an image; is the file corrupt or not an image?") from None
    check_image_sides(image, what)
    return image.convert("RGB") if photo else image


_PALETTE = np.array([(0, 0, 0), *ADE20K_PALETTE], dtype=np.int32)  # index 0: unknown (black)


def snap_to_palette(rgb: np.ndarray) -> np.ndarray:
    """Class index (0..150) of the nearest ADE20k palette colour for each pixel of an H×W×3 array.

    Used for brush strokes, whose anti-aliased borders blend colours; uploaded masks are not snapped.
    """
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    colours, inverse = np.unique(packed.ravel(), return_inverse=True)
    unique_rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(np.int32)
    distance = ((unique_rgb[:, None, :] - _PALETTE[None]) ** 2).sum(-1)
    return distance.argmin(1).astype(np.uint8)[inverse].reshape(rgb.shape[:2])


def _distinct_colours(rgb: np.ndarray) -> int:
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    return len(np.unique(packed))


def editor_structure(value: dict[str, Any] | None, extract, what: str = "structure") -> tuple[Any, str]:
    """The mask-to-image structure from the ImageEditor's value: ``(index mask or extracted structure, how it was read)``.

    The background (an uploaded ADE20k index/palette mask, a photo, or nothing) is read
    strictly: a mask with colours outside the palette is an error. Brush strokes (layers,
    alpha ≥ 128) are painted over it as the nearest palette class. A background that is
    no valid mask but has many colours is a photo: its mask comes from ``extract``.
    """
    if value is None:
        raise gr.Error(f"{what}: upload an ADE20k mask (index or palette PNG) or a photo, or draw one")
    background = value.get("background")
    layers = [np.asarray(layer) for layer in value.get("layers") or [] if layer is not None]
    painted = [layer[..., 3] >= 128 for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    has_strokes = any(mask.any() for mask in painted)
    if background is not None:
        background = np.asarray(background)
        check_image_sides(Image.fromarray(background), what)
    has_background = background is not None and not (background.shape[-1] == 4 and (background[..., 3] == 0).all())
    if not has_background and not has_strokes:
        raise gr.Error(f"{what}: the canvas is empty; upload an ADE20k mask (index or palette PNG) or a photo, or draw one")

    how = "drawn"
    if has_background:
        rgb = background[..., :3]
        try:
            mask = load_ade20k_mask(np.ascontiguousarray(rgb))
            how = "uploaded mask"
        except StructureError as mask_error:
            if _distinct_colours(rgb) <= PHOTO_COLOURS:
                raise gr.Error(f"{what}: {mask_error}") from None
            try:
                structure = extract(Image.fromarray(rgb))
            except (StructureError, ImportError, OSError) as error:
                raise gr.Error(
                    f"{what}: this looks like a photo, not an ADE20k mask, and its mask cannot be extracted here "
                    f"({error}). Upload an index or palette mask instead."
                ) from None
            if has_strokes:
                raise gr.Error(f"{what}: drawing over a photo is not supported; upload a mask to draw over, or clear the strokes")
            return structure, "segmented photo"
    else:
        mask = np.zeros(layers[0].shape[:2], dtype=np.uint8)
    for layer, strokes in zip(layers, painted):
        if strokes.shape != mask.shape:
            raise gr.Error(f"{what}: a drawn layer is {strokes.shape[1]}×{strokes.shape[0]} but the mask {mask.shape[1]}×{mask.shape[0]}")
        if strokes.any():
            mask = np.where(strokes, snap_to_palette(layer[..., :3]), mask).astype(np.uint8)
            how = "uploaded mask + strokes" if has_background else "drawn"
    return mask, how
