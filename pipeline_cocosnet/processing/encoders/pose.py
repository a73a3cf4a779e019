"""pose-to-body: body keypoints (or a photo, its pose estimated) → the 20-channel DeepFashionHD label.

Keypoint formats and the label rendering: :mod:`pipeline_cocosnet.processing.formats.keypoints`;
pose estimation from photos: :mod:`pipeline_cocosnet.processing.backends.pose_estimation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..backends.pose_estimation import get_pose_estimator
from ..errors import StructureError
from ..formats.keypoints import (
    POSE_LABEL_CHANNELS,
    Keypoints,
    load_openpose_json,
    load_openpose_keypoints,
    normalize_keypoints,
    prepare_exemplar_photo,
    render_pose_image,
    render_pose_label,
    scale_keypoints_to_canvas,
)
from ..images import open_image
from .base import Backend, StructureEncoder

__all__ = ["PoseEncoder"]


_PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def _is_photo(structure: Any) -> bool:
    """A PIL image, a uint8 H×W×3/4 array or an image file path: a photo to estimate the pose from."""
    if isinstance(structure, Image.Image):
        return True
    if isinstance(structure, np.ndarray):
        return structure.dtype == np.uint8 and structure.ndim == 3 and structure.shape[2] in (3, 4)
    return isinstance(structure, (str, Path)) and Path(structure).suffix.lower() in _PHOTO_SUFFIXES


class PoseEncoder(StructureEncoder):
    """pose-to-body (DeepFashionHD): OpenPose-18 keypoints on the 1024² canvas → 20-channel label.

    ``encode`` accepts 18 keypoints (list of ``(x, y)``/None or an 18×2 array), a
    ``(candidate_path, subset_path)`` pair in the DeepFashionHD text format (or just the
    ``NAME_candidate.txt`` path, its ``NAME_subset.txt`` beside it), an OpenPose JSON
    file path / dict, or a photo (PIL image, uint8 H×W×3 array, image path), whose pose
    the ``estimator`` finds (see :meth:`extract`). The label is square; exemplars are
    padded to a square with grey 232 and bicubic-resized, as in training.

    Args:
        estimator: the photo pose backend: ``"vitpose"`` (default, ``transformers``),
            ``"mediapipe"``, or any :class:`~pipeline_cocosnet.processing.backends.pose_estimation.PoseEstimator`. Resolved on
            the first photo, so keypoint inputs never need the backend installed.
    """

    task = "pose-to-body"
    channels = POSE_LABEL_CHANNELS
    option_names = ("estimator",)

    estimator = Backend(get_pose_estimator, doc="The pose estimator (made on first use from the spec set).")

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def extract(self, photo: Image.Image) -> Keypoints:
        """The main person's 18 keypoints on the 1024² canvas (photo padded to a square, centred).

        The canvas mapping is the one of :func:`prepare_exemplar_photo`, so a photo's keypoints
        line up with the same photo used as an exemplar.

        Raises:
            StructureError: no person found.
        """
        image = photo if isinstance(photo, Image.Image) else Image.fromarray(np.asarray(photo)[..., :3])
        keypoints = self.estimator(image.convert("RGB"))
        name = getattr(self.estimator, "name", type(self.estimator).__name__)
        if keypoints is None or all(point is None for point in normalize_keypoints(keypoints)):
            raise StructureError(
                f"{self.task}: the {name} pose estimator found no person in the {image.width}×{image.height} photo"
            )
        return scale_keypoints_to_canvas(keypoints, image.size)

    def keypoints(self, structure: Any) -> Keypoints:
        """Read any accepted pose input (a photo: via :meth:`extract`) into 18 canvas keypoints."""
        if _is_photo(structure):
            return self.extract(open_image(structure, "pose photo") if isinstance(structure, (str, Path)) else structure)
        if isinstance(structure, dict) or (isinstance(structure, (str, Path)) and str(structure).endswith(".json")):
            return load_openpose_json(structure)
        if (
            isinstance(structure, (tuple, list))
            and len(structure) == 2
            and all(isinstance(p, (str, Path)) for p in structure)
        ):
            return load_openpose_keypoints(*structure)
        if isinstance(structure, (str, Path)) and str(structure).endswith("_candidate.txt"):
            return load_openpose_keypoints(structure, str(structure)[: -len("_candidate.txt")] + "_subset.txt")
        if isinstance(structure, (str, Path)):
            raise StructureError(
                f"pose file {structure}: give an OpenPose .json file, a NAME_candidate.txt file (its "
                f"NAME_subset.txt beside it), a (candidate.txt, subset.txt) pair or a photo"
            )
        try:
            return normalize_keypoints(structure)
        except (TypeError, ValueError) as error:
            raise StructureError(f"pose: {error}") from None

    @staticmethod
    def _side(size: tuple[int, int]) -> int:
        if size[0] != size[1]:
            raise StructureError(f"pose labels are square (DeepFashionHD); got size {size[0]}×{size[1]}")
        return size[0]

    def encode(self, structure: Any, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return render_pose_label(self.keypoints(structure), self._side(size), dtype)

    def render(self, structure: Any, size: tuple[int, int]) -> Image.Image:
        return render_pose_image(self.keypoints(structure), self._side(size))

    @classmethod
    def is_single(cls, value: Any) -> bool:
        """A list of (x, y) pairs and ``None`` (at least one point) is one pose's keypoints, not a batch."""

        def is_point(item: Any) -> bool:
            if item is None:
                return True
            if isinstance(item, (tuple, list, np.ndarray)) and len(item) == 2:
                return all(isinstance(v, (int, float, np.integer, np.floating)) for v in item)
            return False

        return isinstance(value, list) and bool(value) and all(map(is_point, value)) and any(v is not None for v in value)

    @classmethod
    def label_picture(cls, label: torch.Tensor) -> torch.Tensor:
        """The label's first three channels: the skeleton drawn in colour (the rest are limb masks)."""
        return label[:, :3].float()

    def prepare_exemplar(self, photo: Image.Image, size: tuple[int, int]) -> Image.Image:
        return prepare_exemplar_photo(photo, self._side(size))
