"""Edge maps for edge-to-face (MetFaces): our own, deterministic edge definition.

The edge maps of the published MetFaces model were never released, so this package
defines its own. :func:`photo_to_edges` is the single definition, used for training
data and at inference alike (exemplar structures and photos given as structures):

1. the photo → 8-bit grey (OpenCV ``COLOR_RGB2GRAY``: 0.299 R + 0.587 G + 0.114 B);
2. resize to the target size first (``INTER_AREA`` when shrinking, ``INTER_CUBIC``
   when enlarging), so the edge density does not depend on the photo's resolution;
3. Gaussian blur, 5×5 kernel, σ = 1.0;
4. Canny, thresholds 50 (low) and 100 (high), 3×3 Sobel, L2 gradient magnitude;
5. optionally (``dilate=True``) one 3×3 dilation, making lines 3 px wide;
6. edges = 1.0, background = 0.0 (float32 H×W).

Edge maps given by users (drawn or exported) are used as given: grey value ≥ 0.5 is
an edge after putting the lines on the right side (edge maps are sparse, so when
most pixels are ≥ 0.5 — dark lines on white — the map is inverted; ``invert``
forces it). A map of another size is resized as a 0/1 image: ``INTER_AREA`` when it
shrinks, and a pixel is an edge when at least 20 % of the area it covers is (so
one-pixel lines survive up to a 5× reduction); ``INTER_NEAREST`` otherwise.

Edge map or photo? With ``from_photos="auto"`` (the default) an input is an edge
map when it is grey (its R, G, B differ by more than 24 on at most 1 % of the
pixels) and at least 98 % of its pixels are near black or near white (≤ 32 or
≥ 223 of 255, which tolerates JPEG noise); anything else is a photo, whose edges are
extracted. ``from_photos=True``/``False`` forces either reading.

With ``align_faces`` set (see :mod:`pipeline_cocosnet.processing.backends.face`), photos are
first cropped and aligned the FFHQ/MetFaces way at the model size, both for
extracted structures and for exemplars, so an exemplar and its edges line up.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Union

import cv2
import numpy as np
import torch
from PIL import Image

from ..backends.face import align_face, resolve_landmarker
from ..errors import StructureError
from ..images import open_structure_file
from .base import Choice, StructureEncoder

__all__ = [
    "BLUR_KSIZE",
    "BLUR_SIGMA",
    "CANNY_HIGH",
    "CANNY_LOW",
    "EDGE_MAP_COVERAGE",
    "EDGE_MAP_THRESHOLD",
    "EdgeEncoder",
    "PhotoEdges",
    "binarize_edge_map",
    "is_edge_map",
    "photo_to_edges",
]

BLUR_KSIZE = 5
BLUR_SIGMA = 1.0
CANNY_LOW = 50
CANNY_HIGH = 100
EDGE_MAP_THRESHOLD = 0.5
EDGE_MAP_COVERAGE = 0.2
_EXTREME_FRACTION = 0.98  # share of near-black/near-white pixels that makes an edge map
_EXTREME_MARGIN = 32
_COLOUR_DIFFERENCE = 24
_COLOUR_FRACTION = 0.01

Size = Union[int, tuple[int, int]]
FromPhotos = Union[Literal["auto"], bool]


def _hw(size: Size) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {height}×{width}")
    return height, width


def _rgb_array(photo: Any) -> np.ndarray:
    """H×W×3 (or H×W) uint8 from a PIL image or a uint8 array."""
    if isinstance(photo, Image.Image):
        return np.asarray(photo.convert("RGB"))
    array = np.asarray(photo)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"photo must be a PIL image or a uint8 H×W×3 array, got {array.dtype} {array.shape}")
    return array[..., :3] if array.ndim == 3 and array.shape[2] == 4 else array


def _resize(image: np.ndarray, height: int, width: int, shrink: int, enlarge: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    smaller = height <= image.shape[0] and width <= image.shape[1]
    return cv2.resize(image, (width, height), interpolation=shrink if smaller else enlarge)


def photo_to_edges(photo: Any, size: Size, *, dilate: bool = False) -> np.ndarray:
    """The edge map of a photo: THE edge definition, for training and inference (module docstring).

    Args:
        photo: a PIL image (any mode) or a uint8 H×W×3 RGB / H×W grey array.
        size: output (H, W), or one int for a square.
        dilate: one 3×3 dilation after Canny (3-px lines). A model trained with it
            must be used with it.

    Returns:
        float32 H×W array: 1.0 on edges, 0.0 elsewhere. Deterministic.
    """
    height, width = _hw(size)
    image = _rgb_array(photo)
    grey = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    grey = _resize(np.squeeze(grey, -1) if grey.ndim == 3 else grey, height, width, cv2.INTER_AREA, cv2.INTER_CUBIC)
    blurred = cv2.GaussianBlur(grey, (BLUR_KSIZE, BLUR_KSIZE), BLUR_SIGMA)
    edges = cv2.Canny(blurred, CANNY_LOW, CANNY_HIGH, apertureSize=3, L2gradient=True)
    if dilate:
        edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    return (edges > 0).astype(np.float32)


# --------------------------------------------------------------------------- edge maps


def _as_uint8(structure: Any) -> np.ndarray:
    """An edge map or photo input as a uint8 H×W or H×W×3 array."""
    if isinstance(structure, Image.Image):
        mode = structure.mode
        if mode in ("1", "L", "I", "I;16", "F", "LA"):
            array = np.asarray(structure.convert("F") if mode in ("I", "I;16", "F") else structure.convert("L"))
            if array.dtype != np.uint8:  # 16-bit / float images: scale by their own range
                top = 65535.0 if mode == "I;16" or array.max() > 255 else (1.0 if array.max() <= 1.0 else 255.0)
                array = np.clip(np.rint(array / top * 255), 0, 255).astype(np.uint8)
            return array
        return np.asarray(structure.convert("RGB"))
    if isinstance(structure, torch.Tensor):
        structure = structure.detach().cpu()
        if structure.dim() == 3 and structure.shape[0] in (1, 3):
            structure = structure.permute(1, 2, 0)
        structure = structure.numpy()
    array = np.asarray(structure)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3) or array.size == 0:
        raise StructureError(f"edge map / photo must be H×W or H×W×3, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise StructureError("float edge maps / photos must hold values in [0, 1]")
        return np.rint(array * 255).astype(np.uint8)
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise StructureError(
                f"integer edge maps / photos must hold values 0..255, got {array.min()}..{array.max()}"
            )
        return array.astype(np.uint8)
    raise StructureError(f"edge map / photo has unsupported dtype {array.dtype}")


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def is_edge_map(image: Any) -> bool:
    """The ``"auto"`` rule: grey and ≥ 98 % of pixels near black/white → edge map (module docstring)."""
    image = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 else _as_uint8(image)
    if image.ndim == 3:
        channels = image.astype(np.int16)
        spread = channels.max(axis=2) - channels.min(axis=2)
        if (spread > _COLOUR_DIFFERENCE).mean() > _COLOUR_FRACTION:
            return False
    grey = _grey(image)
    extreme = (grey <= _EXTREME_MARGIN) | (grey >= 255 - _EXTREME_MARGIN)
    return bool(extreme.mean() >= _EXTREME_FRACTION)


def binarize_edge_map(edge_map: Any, size: Size, invert: bool | None = None) -> np.ndarray:
    """A given edge map as float32 H×W in {0, 1} at ``size`` (threshold, polarity and resize: module docstring).

    Args:
        edge_map: PIL image, array (uint8 0..255, float in [0, 1] or bool) or tensor.
        size: output (H, W) or one int.
        invert: ``True`` for dark lines on a light ground, ``False`` for light lines
            on dark, ``None`` to decide by the majority (edges are the minority).
    """
    height, width = _hw(size)
    grey = _grey(edge_map if isinstance(edge_map, np.ndarray) and edge_map.dtype == np.uint8 else _as_uint8(edge_map))
    bright = grey >= round(EDGE_MAP_THRESHOLD * 255)
    if invert is None:
        invert = bool(bright.mean() > 0.5)
    edges = (~bright if invert else bright).astype(np.float32)
    if edges.shape == (height, width):
        return edges
    if height <= edges.shape[0] and width <= edges.shape[1]:
        coverage = cv2.resize(edges, (width, height), interpolation=cv2.INTER_AREA)
        return (coverage >= EDGE_MAP_COVERAGE - 1e-6).astype(np.float32)
    return cv2.resize(edges, (width, height), interpolation=cv2.INTER_NEAREST)


# --------------------------------------------------------------------------- encoder


class PhotoEdges:
    """A photo whose edges are still to be computed: what :meth:`EdgeEncoder.extract` returns.

    Encoding it (``encoder.encode(photo_edges, size)``) aligns the face when the
    encoder is set to and runs :func:`photo_to_edges` at the requested size, so the
    edges are made exactly as for training, at the model's resolution.
    :meth:`edges` gives them as an array.
    """

    def __init__(self, photo: Image.Image, encoder: EdgeEncoder):
        self.photo = photo
        self.encoder = encoder

    def edges(self, size: Size) -> np.ndarray:
        """float32 H×W edges (1 = edge) at ``size``."""
        return self.encoder._photo_edges(self.photo, _hw(size))

    def __repr__(self) -> str:
        return f"PhotoEdges({self.photo.size[0]}×{self.photo.size[1]} photo)"


class EdgeEncoder(StructureEncoder):
    """edge-to-face (MetFaces): an edge map, or a photo whose edges are extracted → the edge label.

    Args:
        channels: label channels; the edge map is replicated into each (1 by default;
            more for model configs that take more).
        from_photos: ``"auto"`` (decide per input, module docstring), ``True`` (every
            input is a photo) or ``False`` (every input is an edge map).
        align_faces: ``False`` (no alignment), ``True`` / ``"dlib"`` (the default
            landmark backend) or a :class:`~pipeline_cocosnet.processing.backends.face.FaceLandmarker`:
            photos (structures and exemplars) are FFHQ-aligned before use. Needs a
            square size.
        dilate: passed to :func:`photo_to_edges` (must match training).
        invert: edge-map polarity (see :func:`binarize_edge_map`; ``None`` = auto).
    """

    task = "edge-to-face"
    option_names = ("channels", "from_photos", "align_faces", "dilate", "invert")
    from_photos = Choice("auto", True, False, doc="Whether inputs are photos: 'auto', True or False (class docstring).")

    def __init__(
        self,
        channels: int = 1,
        *,
        from_photos: FromPhotos = "auto",
        align_faces: Any = False,
        dilate: bool = False,
        invert: bool | None = None,
    ) -> None:
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.channels = channels
        self.from_photos = from_photos
        self.align_faces = align_faces
        self.dilate = bool(dilate)
        self.invert = invert

    @property
    def align_faces(self) -> Any:
        """The face-alignment option as given; assigning it takes effect on the next photo."""
        return self._align_faces

    @align_faces.setter
    def align_faces(self, value: Any) -> None:
        self._align_faces = value
        self._landmarker: Any = None

    @property
    def landmarker(self) -> Any:
        """The face landmarker in use, or ``None`` (resolved on first use: the backend is imported lazily)."""
        if self._landmarker is None and self.align_faces not in (False, None):
            self._landmarker = resolve_landmarker(self.align_faces)
        return self._landmarker

    def _align(self, photo: Image.Image, size: tuple[int, int]) -> Image.Image:
        if self.landmarker is None:
            return photo
        if size[0] != size[1]:
            raise StructureError(f"{self.task}: face alignment makes square crops; got size {size[0]}×{size[1]}")
        return align_face(photo, size[0], self.landmarker)[0]

    def _photo_edges(self, photo: Image.Image, size: tuple[int, int]) -> np.ndarray:
        return photo_to_edges(self._align(photo.convert("RGB"), size), size, dilate=self.dilate)

    def edges(self, structure: Any, size: tuple[int, int]) -> np.ndarray:
        """float32 H×W edges (1 = edge) of any accepted input at ``size``."""
        size = _hw(size)
        if isinstance(structure, PhotoEdges):
            return structure.edges(size)
        if isinstance(structure, (str, os.PathLike)):
            structure = open_structure_file(structure, "edge map / photo")
        image = _as_uint8(structure)
        if self.from_photos is True or (self.from_photos == "auto" and not is_edge_map(image)):
            photo = Image.fromarray(image).convert("RGB")
            return self._photo_edges(photo, size)
        return binarize_edge_map(image, size, self.invert)

    def encode(self, structure: Any, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``channels×H×W`` in {0, 1} (the edge map replicated into each channel), float32 or ``dtype``."""
        edges = torch.from_numpy(self.edges(structure, size)).to(dtype)
        return edges[None].expand(self.channels, -1, -1).contiguous()

    def extract(self, photo: Image.Image) -> PhotoEdges:
        """The photo's edges, computed at the size :meth:`encode` asks for (aligned first when configured)."""
        return PhotoEdges(photo.convert("RGB"), self)

    def render(self, structure: Any, size: tuple[int, int]) -> Image.Image:
        """White edges on black, RGB."""
        edges = (self.edges(structure, size) * 255).astype(np.uint8)
        return Image.fromarray(edges, "L").convert("RGB")

    def prepare_exemplar(self, photo: Image.Image, size: tuple[int, int]) -> Image.Image:
        """FFHQ-aligned at ``size`` when configured (same crop as the structure side), else bicubic-resized."""
        if self.landmarker is None:
            return super().prepare_exemplar(photo, size)
        return self._align(photo.convert("RGB"), tuple(size))
