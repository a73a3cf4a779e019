"""Structure-encoder options: saved as JSON values, rebuilt from them, and live when set on an encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline_cocosnet.processing import ADE20KMaskEncoder, EdgeEncoder, PoseEncoder
from pipeline_cocosnet.tasks import get_task


@pytest.mark.parametrize(
    "encoder",
    [
        PoseEncoder(estimator="mediapipe"),
        ADE20KMaskEncoder(input_format="palette", segmenter="some/segmentation-model"),
        EdgeEncoder(channels=3, from_photos=True, align_faces="dlib", dilate=True, invert=False),
    ],
    ids=lambda e: e.task,
)
def test_options_round_trip_through_json(encoder):
    config = json.loads(json.dumps(encoder.get_config()))
    assert config["task"] == encoder.task
    rebuilt = get_task(config["task"], model=True).encoder_class.from_config(config)
    assert type(rebuilt) is type(encoder)
    assert rebuilt.get_config() == config
    assert all(rebuilt.option(name) == encoder.option(name) for name in encoder.option_names)


def test_defaults_are_saved_too():
    assert get_task("edge-to-face").make_encoder().get_config() == {
        "task": "edge-to-face", "channels": 1, "from_photos": "auto", "align_faces": False, "dilate": False, "invert": None,
    }


def test_unknown_option_names_the_option():
    with pytest.raises(ValueError, match=r"unknown structure-encoder options \['colour'\]"):
        PoseEncoder.from_config({"task": "pose-to-body", "colour": "red"})


def test_a_backend_object_is_saved_by_its_name_with_a_warning():
    class Estimator:
        name = "mediapipe"

        def __call__(self, photo):
            return None

    with pytest.warns(UserWarning, match="estimator=Estimator is an object and is saved as 'mediapipe'"):
        assert PoseEncoder(estimator=Estimator()).get_config()["estimator"] == "mediapipe"

    with pytest.warns(UserWarning, match="saved as None"):
        assert ADE20KMaskEncoder(segmenter=lambda photo: np.zeros((4, 4), np.uint8)).get_config()["segmenter"] is None


def test_setting_a_backend_takes_effect_on_the_next_photo():
    calls = []

    def first(photo):
        calls.append("first")
        return np.full((photo.height, photo.width), 3, np.uint8)

    def second(photo):
        calls.append("second")
        return np.full((photo.height, photo.width), 5, np.uint8)

    encoder = ADE20KMaskEncoder(input_format="photo", segmenter=first)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    assert encoder.index_mask(photo).max() == 3
    encoder.segmenter = second
    assert encoder.index_mask(photo).max() == 5
    assert calls == ["first", "second"]


def test_setting_align_faces_resets_the_landmarker():
    seen = []

    def landmarker(image):
        seen.append(image.shape)
        return None  # no face: alignment falls back to a centre crop

    encoder = EdgeEncoder(from_photos=True)
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 48, 3), dtype=np.uint8))
    assert encoder.landmarker is None
    encoder.align_faces = landmarker
    assert encoder.landmarker is landmarker
    with pytest.warns(UserWarning):
        encoder.encode(photo, (32, 32))
    assert seen
    encoder.align_faces = False
    assert encoder.landmarker is None


def test_invalid_option_values_are_refused_when_set():
    with pytest.raises(ValueError, match="input_format"):
        ADE20KMaskEncoder().input_format = "jpeg"
    with pytest.raises(ValueError, match="from_photos"):
        EdgeEncoder().from_photos = "sometimes"
