"""ADE20k segmentation masks: class tables, the palette, and reading masks (a data format).

ADE20k (SceneParsing, 150 classes) masks come in two forms, both accepted:

* **index masks**: one integer per pixel, 0 = unknown/other, 1..150 = the classes of
  :data:`ADE20K_CLASSES` (class ``k`` is ``ADE20K_CLASSES[k - 1]``), as in the
  dataset's annotation PNGs (mode ``L``);
* **palette images**: RGB pictures drawn with the standard ADE20k colours
  (:data:`ADE20K_PALETTE`, class ``k`` has colour ``ADE20K_PALETTE[k - 1]``), black
  = 0.

Palette source: ``ADE20KDataset.METAINFO`` of mmsegmentation 1.2.2 (PyPI wheel,
``mmseg/datasets/ade.py``), the same class order and colours as CSAIL's
``color150`` / ``objectInfo150``; class names as there (``"bed "`` stripped).
That palette gives **road (7) and skyscraper (49) the same colour** (140, 140, 140);
a palette image cannot tell them apart and :func:`palette_to_mask` reads that colour
as road (7). Use index masks where skyscrapers matter.

How an input is read (``input_format="auto"``; force it with ``"index"`` or
``"palette"``):

* 2-D arrays/tensors and PIL images of mode ``L``, ``I``, ``I;16``, ``F`` and ``P``
  are index masks (a ``P`` image by its index values, as label PNGs are stored;
  convert it to RGB first to read it by its colours);
* H×W×3/4 arrays and RGB/RGBA images whose channels differ somewhere are palette
  images (alpha ignored);
* grey RGB images (R = G = B everywhere) are index masks saved as RGB, unless every
  value is one of the palette's grey colours (0, 120, 140, 220, 230), which makes
  them palette images.

``load_ade20k_mask`` reads masks only; :func:`looks_like_photo` tells a photo from a
palette image. The mask-to-image structure encoder that turns masks (and, through a
segmentation backend, photos) into labels is
:class:`~pipeline_cocosnet.processing.encoders.mask.ADE20KMaskEncoder`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal, Union

import numpy as np
import torch
from PIL import Image

from ..errors import StructureError
from ..images import open_structure_file

__all__ = [
    "ADE20K_CLASSES",
    "ADE20K_LABEL_CHANNELS",
    "ADE20K_NUM_CLASSES",
    "ADE20K_PALETTE",
    "INDEX_MODES",
    "check_indices",
    "is_palette_rgb",
    "class_legend",
    "looks_like_photo",
    "resize_mask_nearest",
    "load_ade20k_mask",
    "mask_to_indexed_palette",
    "mask_to_palette",
    "palette_to_mask",
]

ADE20K_NUM_CLASSES = 150
ADE20K_LABEL_CHANNELS = ADE20K_NUM_CLASSES + 1  # + channel 0: unknown / other

ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
)  # fmt: skip
ADE20K_PALETTE: tuple[tuple[int, int, int], ...] = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)  # fmt: skip

_UNKNOWN_COLOUR = (0, 0, 0)
# Colour → class lookup, keyed by 0xRRGGBB; the first class of a shared colour wins
# (road 7 before skyscraper 49).
_COLOUR_TO_INDEX: dict[int, int] = {}
for _index, (_r, _g, _b) in reversed(list(enumerate([_UNKNOWN_COLOUR, *ADE20K_PALETTE]))):
    _COLOUR_TO_INDEX[(_r << 16) | (_g << 8) | _b] = _index
_PALETTE_GREYS = frozenset(r for r, g, b in [_UNKNOWN_COLOUR, *ADE20K_PALETTE] if r == g == b)
INDEX_MODES = {"L", "I", "I;16", "I;16B", "I;16L", "F", "P", "1"}

InputFormat = Literal["auto", "index", "palette"]
PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------- conversions


def _packed(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 → H×W int32 0xRRGGBB."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def palette_to_mask(image: Image.Image | np.ndarray) -> np.ndarray:
    """Read an ADE20k palette image into an index mask.

    Args:
        image: RGB (or RGBA; alpha ignored) PIL image or H×W×3/4 uint8 array drawn
            with :data:`ADE20K_PALETTE` colours, black for unknown.

    Returns:
        uint8 H×W array of class indices 0..150. The colour (140, 140, 140), shared
        by road and skyscraper, is read as road (7).

    Raises:
        StructureError: pixels whose colour is not in the palette (the message says
            how many and names a few of the colours).
    """
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise StructureError(f"ADE20k palette image must be H×W×3 (RGB), got shape {rgb.shape}")
    colours, inverse = np.unique(_packed(rgb[..., :3]), return_inverse=True)
    lookup = np.array([_COLOUR_TO_INDEX.get(int(c), -1) for c in colours], dtype=np.int16)
    unknown = lookup < 0
    if unknown.any():
        counts = np.bincount(inverse.ravel(), minlength=len(colours))[unknown]
        order = np.argsort(-counts, kind="stable")
        shown = ", ".join(
            f"({c >> 16}, {(c >> 8) & 255}, {c & 255}) ×{n}"
            for c, n in zip(colours[unknown][order][:5].tolist(), counts[order][:5].tolist(), strict=True)
        )
        more = f" and {int(unknown.sum()) - 5} more" if unknown.sum() > 5 else ""
        raise StructureError(
            f"ADE20k palette image: {int(counts.sum())} of {rgb.shape[0] * rgb.shape[1]} pixels have "
            f"{int(unknown.sum())} colours that are not ADE20k palette colours: {shown}{more}. Save label maps "
            f"as PNG (JPEG and antialiasing change colours), or pass an index mask"
        )
    return lookup[inverse].reshape(rgb.shape[:2]).astype(np.uint8)


def check_indices(mask: np.ndarray) -> np.ndarray:
    """Validate an integer-valued index mask and return it as uint8."""
    if mask.ndim != 2:
        raise StructureError(f"ADE20k index mask must be 2-D (H×W), got shape {mask.shape}")
    if mask.size == 0:
        raise StructureError("ADE20k index mask is empty")
    if mask.dtype.kind == "b":
        mask = mask.astype(np.uint8)
    elif mask.dtype.kind == "f":
        if not np.isfinite(mask).all() or (mask != np.round(mask)).any():
            raise StructureError("ADE20k index mask has non-integer values; expected class indices 0..150")
    elif mask.dtype.kind not in "iu":
        raise StructureError(f"ADE20k index mask must hold integers, got dtype {mask.dtype}")
    low, high = mask.min(), mask.max()
    if low < 0 or high > ADE20K_NUM_CLASSES:
        bad = (mask < 0) | (mask > ADE20K_NUM_CLASSES)
        raise StructureError(
            f"ADE20k index mask has values outside 0..150 (min {low:g}, max {high:g}; {int(bad.sum())} pixels). "
            f"0 is unknown and 1..150 are the ADE20k classes; an RGB colour picture is read as a palette image"
        )
    return mask.astype(np.uint8)


def mask_to_palette(index_mask: Any) -> Image.Image:
    """Draw an index mask (H×W, values 0..150) in the ADE20k palette colours (0 → black) as an RGB image."""
    mask = check_indices(np.asarray(index_mask))
    colours = np.array([_UNKNOWN_COLOUR, *ADE20K_PALETTE], dtype=np.uint8)
    return Image.fromarray(colours[mask], "RGB")


def mask_to_indexed_palette(index_mask: Any) -> Image.Image:
    """An index mask (H×W, values 0..150) as a ``P``-mode image: the pixel values *are* the class ids
    (read back as an index mask, skyscraper and road stay apart) and its palette the ADE20k colours,
    so image viewers and browsers show it in colour. Saved as PNG, it is an index mask people can see."""
    mask = check_indices(np.asarray(index_mask))
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask).tobytes())
    image.putpalette([c for colour in (_UNKNOWN_COLOUR, *ADE20K_PALETTE) for c in colour])
    return image


def class_legend(classes: Iterable[int] | np.ndarray | None = None) -> list[tuple[int, str, tuple[int, int, int]]]:
    """``(id, name, colour)`` of ADE20k classes, e.g. for a legend beside a rendered mask.

    Args:
        classes: the class ids to list, e.g. an index mask (its distinct values are
            used) or any iterable of ids; default all of 1..150. Id 0 is listed as
            ``(0, "unknown", (0, 0, 0))`` when included.
    """
    if classes is None:
        ids = range(1, ADE20K_NUM_CLASSES + 1)
    else:
        values = classes if isinstance(classes, (np.ndarray, torch.Tensor)) else list(classes)
        ids = np.unique(check_indices(np.asarray(values).reshape(1, -1))).tolist()
    return [
        (0, "unknown", _UNKNOWN_COLOUR) if i == 0 else (i, ADE20K_CLASSES[i - 1], ADE20K_PALETTE[i - 1]) for i in ids
    ]


# --------------------------------------------------------------------------- inputs


def is_palette_rgb(rgb: np.ndarray) -> bool:
    """The ``"auto"`` rule for 3-channel inputs (see the module docstring)."""
    grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return not grey or set(np.unique(rgb[..., 0]).tolist()) <= _PALETTE_GREYS


def load_ade20k_mask(structure: Any, input_format: InputFormat = "auto") -> np.ndarray:
    """Read any accepted mask input into a uint8 H×W index mask (values 0..150).

    Args:
        structure: a path, a PIL image, a numpy array or a tensor (H×W indices, or
            H×W×3 palette colours).
        input_format: ``"auto"`` (the rule in the module docstring), ``"index"`` or
            ``"palette"``.

    Raises:
        StructureError: unreadable file, wrong shape, out-of-range indices or colours
            that are not in the palette.
    """
    if input_format not in ("auto", "index", "palette"):
        raise ValueError(f"input_format must be 'auto', 'index' or 'palette', got {input_format!r}")
    if isinstance(structure, (str, os.PathLike)):
        structure = open_structure_file(structure, "ADE20k mask")
    if isinstance(structure, torch.Tensor):
        structure = structure.detach().cpu().numpy()
    if isinstance(structure, Image.Image):
        if input_format == "palette" or (input_format == "auto" and structure.mode not in INDEX_MODES):
            structure = np.asarray(structure.convert("RGB"))
        elif structure.mode in INDEX_MODES:
            structure = np.asarray(structure)
        else:  # forced index reading of a colour image: it must be grey
            structure = np.asarray(structure.convert("RGB"))
    if not isinstance(structure, np.ndarray):
        raise StructureError(
            f"ADE20k mask: expected a path, a PIL image, an array or a tensor, got {type(structure).__name__}"
        )
    array = structure[..., 0] if structure.ndim == 3 and structure.shape[2] == 1 else structure
    if array.ndim == 3 and array.shape[2] in (3, 4):
        rgb = array[..., :3]
        if input_format == "palette" or (input_format == "auto" and is_palette_rgb(rgb)):
            if rgb.dtype != np.uint8:
                raise StructureError(f"ADE20k palette image must be uint8 RGB, got dtype {rgb.dtype}")
            return palette_to_mask(rgb)
        if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
            raise StructureError("ADE20k index mask given as a colour image (its R, G, B differ); use a palette image")
        array = rgb[..., 0]
    elif input_format == "palette":
        raise StructureError(f"ADE20k palette image must be H×W×3 (RGB), got shape {array.shape}")
    return check_indices(array)


def resize_mask_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(size):
        return mask
    return np.asarray(Image.fromarray(mask, "L").resize((size[1], size[0]), Image.NEAREST))


# --------------------------------------------------------------------------- photos or masks


def looks_like_photo(rgb: np.ndarray) -> bool:
    """True for a colour picture whose pixels are mostly far from every palette colour (a photo).

    Palette images, even JPEG-compressed or antialiased, have most pixels within 16 (per
    channel) of a palette colour; photos have few (the fixture photos: 11–27 %). Grey
    images (R = G = B) are never photos here: they are index masks saved as RGB.
    """
    rgb = rgb[..., :3]
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return False
    step = max(1, max(rgb.shape[:2]) // 128)
    pixels = rgb[::step, ::step].astype(np.int16).reshape(-1, 1, 3)
    colours = np.array([_UNKNOWN_COLOUR, *ADE20K_PALETTE], dtype=np.int16)
    distance = np.abs(pixels - colours[None]).max(axis=-1).min(axis=-1)
    return bool((distance <= 16).mean() < 0.5)
