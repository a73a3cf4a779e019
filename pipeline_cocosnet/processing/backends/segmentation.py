"""Semantic segmentation of photos into ADE20k's 150 classes (the mask-to-image structure).

A :class:`Segmenter` is any callable ``segmenter(photo) -> index mask`` (uint8 H×W at the
photo's size, 0 = unknown, 1..150 = :data:`~pipeline_cocosnet.processing.formats.ade20k.ADE20K_CLASSES`) with a ``name``.
:class:`TransformersSegmenter` runs any ``transformers`` semantic-segmentation model
trained on ADE20k (SceneParsing-150): a Hub id or a local folder, loaded on first use.
Extra: ``segmentation``.

Default: ``openmmlab/upernet-convnext-tiny`` (UperNet + ConvNeXt-T, MIT licence, 46.1
mIoU on ADE20k val, ~60 M parameters, a few seconds per photo on a CPU). The fast
alternative ``nvidia/segformer-b0-finetuned-ade-512-512`` (3.8 M parameters, 37.4 mIoU,
well under a second on a CPU) is under the NVIDIA Source Code License for SegFormer
(non-commercial), so it is not the default. See ``docs/structure_from_photos.md``.

Class ids: HF ADE20k models predict 150 classes with id 0 = wall (the "reduced" labels),
so the index mask is ``argmax + 1``; a model with 151 classes (0 = other) is taken as is.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Protocol, Union, runtime_checkable

import numpy as np
import torch
from PIL import Image

from ..formats.ade20k import ADE20K_NUM_CLASSES, mask_to_palette
from .common import PhotoCache, as_rgb_photo, load_pretrained, require

__all__ = [
    "DEFAULT_SEGMENTATION_MODEL",
    "Segmenter",
    "TransformersSegmenter",
    "get_segmenter",
    "render_segmentation",
    "segment_photo",
]

DEFAULT_SEGMENTATION_MODEL = "openmmlab/upernet-convnext-tiny"


@runtime_checkable
class Segmenter(Protocol):
    """photo → uint8 H×W ADE20k index mask (0 unknown, 1..150) at the photo's size."""

    name: str

    def __call__(self, photo: Image.Image) -> np.ndarray: ...


class TransformersSegmenter:
    """An ADE20k semantic-segmentation model from ``transformers`` (``AutoModelForSemanticSegmentation``).

    Args:
        model: Hub id or local folder holding the model and its image processor.
        device: torch device.

    The model loads on the first call, once per process. Raises
    :class:`~.common.ModelUnavailableError` when it cannot be loaded (the message names
    the id and how to provide it offline), ``ValueError`` when it does not predict the 150
    ADE20k classes.
    """

    def __init__(self, model: str = DEFAULT_SEGMENTATION_MODEL, *, device: str | torch.device = "cpu"):
        self.model = str(model)
        self.name = self.model
        self.device = torch.device(device)
        self._transformers = require("transformers", "segmentation", "the ADE20k segmenter")
        self._cache = PhotoCache()

    def _load(self) -> tuple[Any, Any, int]:
        tf, what = self._transformers, "ADE20k segmenter"
        processor = load_pretrained(tf.AutoImageProcessor.from_pretrained, self.model, what)
        model = load_pretrained(tf.AutoModelForSemanticSegmentation.from_pretrained, self.model, what)
        classes = model.config.num_labels
        if classes not in (ADE20K_NUM_CLASSES, ADE20K_NUM_CLASSES + 1):
            raise ValueError(
                f"ADE20k segmenter: model {self.model!r} predicts {classes} classes; expected an ADE20k "
                f"(SceneParsing) model with 150 classes (or 151 with 0 = other)"
            )
        return processor, model.to(self.device).eval(), 1 if classes == ADE20K_NUM_CLASSES else 0

    def __call__(self, photo: Image.Image | np.ndarray) -> np.ndarray:
        return self._cache.get(as_rgb_photo(photo, "ADE20k segmenter"), self.segment).copy()

    @torch.no_grad()
    def segment(self, photo: Image.Image) -> np.ndarray:
        """Segment one RGB photo (uncached); see the class docstring."""
        processor, model, offset = self._load()
        inputs = processor(images=photo, return_tensors="pt").to(self.device)
        outputs = model(**inputs)
        classes = processor.post_process_semantic_segmentation(outputs, target_sizes=[(photo.height, photo.width)])[0]
        return (classes.cpu().numpy().astype(np.int64) + offset).astype(np.uint8)


SegmenterSpec = Union[str, Segmenter, Callable[[Image.Image], Any], None]


@functools.lru_cache(maxsize=4)
def _shared(model: str) -> TransformersSegmenter:
    return TransformersSegmenter(model)


def get_segmenter(spec: SegmenterSpec = None) -> Segmenter:
    """``None`` → the default model; a Hub id or folder → a shared :class:`TransformersSegmenter`; a callable → itself."""
    if spec is None:
        spec = DEFAULT_SEGMENTATION_MODEL
    if isinstance(spec, str):
        return _shared(spec)
    if not callable(spec):
        raise TypeError(f"a segmenter must be callable on a PIL photo, got {type(spec).__name__}")
    return spec


def segment_photo(photo: Image.Image, segmenter: SegmenterSpec = None) -> np.ndarray:
    """The ADE20k index mask (uint8 H×W, 0..150) of ``photo`` (see :func:`get_segmenter`)."""
    return get_segmenter(segmenter)(photo)


def render_segmentation(mask: np.ndarray, photo: Image.Image | None = None, alpha: float = 0.5) -> Image.Image:
    """The index mask in ADE20k palette colours, optionally blended over ``photo`` (``alpha`` = mask weight)."""
    picture = mask_to_palette(mask)
    if photo is None:
        return picture
    return Image.blend(photo.convert("RGB").resize(picture.size, Image.BILINEAR), picture, alpha)
