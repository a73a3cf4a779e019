"""Pose estimation from photos: a photo → 18 OpenPose (COCO-18) keypoints in photo pixels.

A :class:`PoseEstimator` is any callable ``estimator(photo) -> Keypoints | None`` (None:
no person found) with a ``name``. Two backends:

* :class:`VitPoseEstimator` (``"vitpose"``, the default): Hugging Face ``transformers``
  ViTPose (top-down, COCO-17 keypoints) on the box of an RT-DETR person detector. Models
  are Hub ids or local folders, downloaded on first use. Extra: ``pose``.
* :class:`MediaPipePoseEstimator` (``"mediapipe"``): MediaPipe's legacy ``solutions.pose``
  (BlazePose, 33 landmarks), whose models ship inside the ``mediapipe`` wheel, so it works
  fully offline. Only mediapipe ≤ 0.10.21 has the legacy solutions (0.10.30+ dropped them
  and ship no models), and 0.10.21 pins ``numpy<2``; see ``docs/structure_from_photos.md``.

Both map to OpenPose-18 through COCO-17 (:func:`coco17_to_openpose18`): the neck
(OpenPose 1) is the midpoint of the shoulders, present only when both are.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Callable, Protocol, Union, runtime_checkable

import numpy as np
import torch
from PIL import Image

from ..formats.keypoints import Keypoints, normalize_keypoints
from .common import BackendMissingError, PhotoCache, as_rgb_photo, load_pretrained, require

__all__ = [
    "COCO17_TO_OPENPOSE18",
    "DEFAULT_POSE_ESTIMATOR",
    "DEFAULT_PERSON_DETECTOR",
    "DEFAULT_VITPOSE_MODEL",
    "MEDIAPIPE_TO_COCO17",
    "MediaPipePoseEstimator",
    "PoseEstimator",
    "VitPoseEstimator",
    "coco17_to_openpose18",
    "get_pose_estimator",
]

DEFAULT_POSE_ESTIMATOR = "vitpose"
DEFAULT_VITPOSE_MODEL = "usyd-community/vitpose-base-simple"
DEFAULT_PERSON_DETECTOR = "PekingU/rtdetr_r50vd_coco_o365"

#: For each OpenPose-18 keypoint, its COCO-17 index; the neck (OpenPose 1) is None (shoulder midpoint).
#: OpenPose: nose, neck, r-shoulder, r-elbow, r-wrist, l-shoulder, l-elbow, l-wrist, r-hip, r-knee,
#: r-ankle, l-hip, l-knee, l-ankle, r-eye, l-eye, r-ear, l-ear. COCO: nose, l/r-eye, l/r-ear,
#: l/r-shoulder, l/r-elbow, l/r-wrist, l/r-hip, l/r-knee, l/r-ankle.
COCO17_TO_OPENPOSE18: tuple[int | None, ...] = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
_COCO_LEFT_SHOULDER, _COCO_RIGHT_SHOULDER = 5, 6

#: For each COCO-17 keypoint, its BlazePose (MediaPipe, 33 landmarks) index.
MEDIAPIPE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def coco17_to_openpose18(
    keypoints: Sequence[Sequence[float]] | np.ndarray | torch.Tensor,
    scores: Sequence[float] | np.ndarray | torch.Tensor | None = None,
    threshold: float = 0.0,
) -> Keypoints:
    """COCO-17 keypoints (17×2, x y in pixels) → 18 OpenPose keypoints.

    A keypoint whose score is below ``threshold`` (or whose coordinates are not finite)
    is missing (None). The neck is the midpoint of both shoulders, missing unless both are present.
    """
    points = np.asarray(keypoints.detach().cpu() if isinstance(keypoints, torch.Tensor) else keypoints, np.float64)
    if points.shape != (17, 2):
        raise ValueError(f"expected 17 COCO keypoints as a 17×2 array, got shape {points.shape}")
    if scores is None:
        keep = np.ones(17, bool)
    else:
        values = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, np.float64)
        if values.shape != (17,):
            raise ValueError(f"expected 17 keypoint scores, got shape {values.shape}")
        keep = values >= threshold
    keep &= np.isfinite(points).all(axis=1)
    coco = [tuple(p) if k else None for p, k in zip(points.tolist(), keep)]
    left, right = coco[_COCO_LEFT_SHOULDER], coco[_COCO_RIGHT_SHOULDER]
    neck = None if left is None or right is None else ((left[0] + right[0]) / 2, (left[1] + right[1]) / 2)
    return normalize_keypoints([neck if i is None else coco[i] for i in COCO17_TO_OPENPOSE18])


@runtime_checkable
class PoseEstimator(Protocol):
    """photo → 18 OpenPose keypoints ``(x, y)`` in the photo's pixels (None where missing), or None (no person)."""

    name: str

    def __call__(self, photo: Image.Image) -> Keypoints | None: ...


class _CachedEstimator:
    """Base: converts the photo to RGB and caches the last few results by pixel content."""

    name = "pose"

    def __init__(self) -> None:
        self._cache = PhotoCache()

    def __call__(self, photo: Image.Image | np.ndarray) -> Keypoints | None:
        return self._cache.get(as_rgb_photo(photo, f"{self.name} pose estimator"), self.estimate)

    def estimate(self, photo: Image.Image) -> Keypoints | None:
        raise NotImplementedError


class VitPoseEstimator(_CachedEstimator):
    """ViTPose (top-down) on the most confident person box of an RT-DETR detector (``transformers``).

    Args:
        pose_model: ViTPose Hub id or local folder (model + image processor).
        detector: person detector Hub id or local folder (any ``AutoModelForObjectDetection``
            whose labels include ``"person"``), or None to use the whole photo as the
            person box (for photos already cropped to one person).
        detection_threshold: minimum detector score of a person box.
        keypoint_threshold: minimum ViTPose heatmap score of a keypoint (below: missing).
        device: torch device for both models.

    Models load on the first call (once per process); see :class:`ModelUnavailableError`.
    """

    name = "vitpose"

    def __init__(
        self,
        pose_model: str = DEFAULT_VITPOSE_MODEL,
        detector: str | None = DEFAULT_PERSON_DETECTOR,
        *,
        detection_threshold: float = 0.5,
        keypoint_threshold: float = 0.3,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        self.pose_model, self.detector = str(pose_model), None if detector is None else str(detector)
        self.detection_threshold, self.keypoint_threshold = float(detection_threshold), float(keypoint_threshold)
        self.device = torch.device(device)
        self._transformers = require("transformers", "pose", "the ViTPose pose estimator")
        require("scipy", "pose", "the ViTPose image processor")

    def _load(self, kind: str, model_id: str) -> tuple[Any, Any]:
        tf = self._transformers
        what = f"{self.name} pose estimator ({kind})"
        model_class = tf.VitPoseForPoseEstimation if kind == "pose model" else tf.AutoModelForObjectDetection
        processor = load_pretrained(tf.AutoImageProcessor.from_pretrained, model_id, what)
        model = load_pretrained(model_class.from_pretrained, model_id, what)
        return processor, model.to(self.device).eval()

    @torch.no_grad()
    def person_box(self, photo: Image.Image) -> np.ndarray | None:
        """The most confident person box ``[x, y, w, h]`` (COCO format, photo pixels), or None."""
        if self.detector is None:
            return np.array([0.0, 0.0, photo.width, photo.height])
        processor, model = self._load("person detector", self.detector)
        person = _label_id(model.config, "person")
        inputs = processor(images=photo, return_tensors="pt").to(self.device)
        result = processor.post_process_object_detection(
            model(**inputs), target_sizes=[(photo.height, photo.width)], threshold=self.detection_threshold
        )[0]
        boxes, scores = result["boxes"].cpu().double(), result["scores"].cpu().double()
        keep = (result["labels"].cpu() == person) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not keep.any():
            return None
        x0, y0, x1, y1 = boxes[keep][scores[keep].argmax()].tolist()
        return np.array([x0, y0, x1 - x0, y1 - y0])

    @torch.no_grad()
    def estimate(self, photo: Image.Image) -> Keypoints | None:
        box = self.person_box(photo)
        if box is None:
            return None
        processor, model = self._load("pose model", self.pose_model)
        inputs = processor(photo, boxes=[box[None]], return_tensors="pt").to(self.device)
        outputs = model(**inputs)
        pose = processor.post_process_pose_estimation(outputs, boxes=[box[None]])[0][0]
        return coco17_to_openpose18(pose["keypoints"], pose["scores"], self.keypoint_threshold)


def _label_id(config: Any, name: str) -> int:
    for index, label in (getattr(config, "id2label", None) or {}).items():
        if str(label).strip().lower() == name:
            return int(index)
    raise ValueError(f"the person detector has no {name!r} class (its labels: {list(config.id2label.values())[:10]} …)")


class MediaPipePoseEstimator(_CachedEstimator):
    """MediaPipe's legacy BlazePose (``mediapipe.solutions.pose``), models inside the wheel (offline).

    Args:
        model_complexity: 0 (lite, downloaded on first use by mediapipe itself — avoid
            offline) or 1 (full, shipped in the wheel). 2 (heavy) is downloaded too.
        min_detection_confidence: MediaPipe's person detection threshold.
        visibility_threshold: minimum landmark visibility (below: missing).

    Raises:
        BackendMissingError: mediapipe is not installed, or is a version without the
            legacy solutions (0.10.30 and later).
    """

    name = "mediapipe"

    def __init__(
        self, model_complexity: int = 1, *, min_detection_confidence: float = 0.5, visibility_threshold: float = 0.5
    ):
        super().__init__()
        mediapipe = require("mediapipe", "pose-mediapipe", "the MediaPipe pose estimator")
        solutions = getattr(mediapipe, "solutions", None)
        if solutions is None or not hasattr(solutions, "pose"):
            raise BackendMissingError(
                f"the MediaPipe pose estimator needs mediapipe's legacy solutions.pose, which mediapipe "
                f"{getattr(mediapipe, '__version__', '?')} does not have (removed in 0.10.30, whose wheels ship no "
                f"models): pip install \"pipeline_cocosnet[pose-mediapipe]\" (mediapipe==0.10.21, which pins numpy<2); "
                f"see docs/structure_from_photos.md"
            )
        self.model_complexity = int(model_complexity)
        self.min_detection_confidence = float(min_detection_confidence)
        self.visibility_threshold = float(visibility_threshold)
        self._pose = solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=self.model_complexity,
            min_detection_confidence=self.min_detection_confidence,
        )

    def estimate(self, photo: Image.Image) -> Keypoints | None:
        result = self._pose.process(np.ascontiguousarray(np.asarray(photo)))
        if result.pose_landmarks is None:
            return None
        landmarks = result.pose_landmarks.landmark
        points = np.array([[landmarks[i].x * photo.width, landmarks[i].y * photo.height] for i in MEDIAPIPE_TO_COCO17])
        visibility = np.array([landmarks[i].visibility for i in MEDIAPIPE_TO_COCO17])
        return coco17_to_openpose18(points, visibility, self.visibility_threshold)


EstimatorSpec = Union[str, PoseEstimator, Callable[[Image.Image], Any], None]
_BACKENDS: dict[str, Callable[[], PoseEstimator]] = {"vitpose": VitPoseEstimator, "mediapipe": MediaPipePoseEstimator}


@functools.lru_cache(maxsize=None)
def _shared(name: str) -> PoseEstimator:
    return _BACKENDS[name]()


def get_pose_estimator(spec: EstimatorSpec = None) -> PoseEstimator:
    """``None`` → the default (``"vitpose"``); ``"vitpose"``/``"mediapipe"`` → a shared default-configured
    instance; a callable → itself. Constructing a backend checks its packages, loads no model."""
    if spec is None:
        spec = DEFAULT_POSE_ESTIMATOR
    if isinstance(spec, str):
        if spec not in _BACKENDS:
            raise ValueError(f"unknown pose estimator {spec!r}; known: {', '.join(_BACKENDS)} (or pass an estimator)")
        return _shared(spec)
    if not callable(spec):
        raise TypeError(f"a pose estimator must be callable on a PIL photo, got {type(spec).__name__}")
    return spec
