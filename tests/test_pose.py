"""DeepFashionHD pose labels (docs/architecture.md §10): loaders, rendering parity, photo helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.processing import (
    POSE_LABEL_CHANNELS,
    load_openpose_json,
    load_openpose_keypoints,
    normalize_keypoints,
    pad_to_square,
    prepare_exemplar_photo,
    render_pose_image,
    render_pose_label,
    scale_keypoints_to_canvas,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pose"
POSES = ["full", "jittered", "missing_left_arm_and_ears"]
# Label channel of each limb with a missing end in the "missing_left_arm_and_ears"
# pose: limbs (6,7), (7,8), (15,17), (16,18) are limbs 4, 5, 14, 16 → channels 3 + j.
MISSING_LIMB_CHANNELS = [7, 8, 17, 19]


def load_fixture(name: str):
    return load_openpose_keypoints(FIXTURES / f"{name}_candidate.txt", FIXTURES / f"{name}_subset.txt")


@pytest.fixture(scope="module")
def reference_labels() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "pose_labels.npz") as data:
        return {name: data[name] for name in POSES}


@pytest.fixture(scope="module")
def full_label() -> torch.Tensor:
    return render_pose_label(load_fixture("full"))


def to_uint8(label: torch.Tensor) -> np.ndarray:
    return (label * 255).round().to(torch.uint8).numpy()


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", POSES)
def test_label_is_bit_exact_with_published_loader(name, reference_labels):
    assert np.array_equal(to_uint8(render_pose_label(load_fixture(name))), reference_labels[name])


def test_label_is_float32_20_channels_in_unit_range(full_label):
    assert POSE_LABEL_CHANNELS == 20
    assert full_label.shape == (POSE_LABEL_CHANNELS, 512, 512)
    assert full_label.dtype == torch.float32
    assert full_label.min() == 0 and full_label.max() == 1


def test_missing_keypoints_give_empty_limbs(reference_labels):
    keypoints = load_fixture("missing_left_arm_and_ears")
    assert [i for i, point in enumerate(keypoints) if point is None] == [6, 7, 16, 17]
    label = render_pose_label(keypoints)
    # An empty limb map has no zero pixel, so its clipped distance is 255 everywhere.
    assert torch.all(label[MISSING_LIMB_CHANNELS] == 1)
    assert torch.all(label[[c for c in range(3, 20) if c not in MISSING_LIMB_CHANNELS]].amin(dim=(1, 2)) == 0)


def test_no_keypoints_give_black_skeleton_and_empty_limbs():
    label = render_pose_label([None] * 18)
    assert torch.all(label[:3] == 0) and torch.all(label[3:] == 1)


def test_other_sizes_work():
    keypoints = load_fixture("full")
    label = render_pose_label(keypoints, size=256)
    assert label.shape == (20, 256, 256) and label.dtype == torch.float32
    assert label.min() == 0 and label.max() == 1
    assert np.array_equal(to_uint8(label[:3]), np.asarray(render_pose_image(keypoints, size=256)).transpose(2, 0, 1))


def test_pose_image_is_the_labels_skeleton(full_label):
    image = render_pose_image(load_fixture("full"))
    assert image.mode == "RGB" and image.size == (512, 512)
    assert np.array_equal(np.asarray(image).transpose(2, 0, 1), to_uint8(full_label[:3]))


# --------------------------------------------------------------------------- other inputs


def openpose_json(keypoints, body25: bool = False) -> dict:
    """An OpenPose JSON document holding one person with these keypoints."""
    triples = [[0.0, 0.0, 0.0] if p is None else [p[0], p[1], 0.9] for p in keypoints]
    if body25:  # insert mid-hip at 8 and append six feet points
        triples = triples[:8] + [[500.0, 520.0, 0.9]] + triples[8:] + [[0.0, 0.0, 0.0]] * 6
    return {"version": 1.3, "people": [{"pose_keypoints_2d": [v for t in triples for v in t]}]}


@pytest.mark.parametrize("body25", [False, True], ids=["coco18", "body25"])
def test_json_gives_same_keypoints_as_text_files(body25):
    keypoints = load_fixture("missing_left_arm_and_ears")
    assert load_openpose_json(openpose_json(keypoints, body25)) == keypoints


def test_json_file_gives_same_label_as_text_files(tmp_path, full_label):
    path = tmp_path / "pose_keypoints.json"
    path.write_text(json.dumps(openpose_json(load_fixture("full"))))
    assert torch.equal(render_pose_label(load_openpose_json(path)), full_label)


def test_plain_list_and_nan_array_give_same_label_as_text_files(reference_labels):
    keypoints = load_fixture("missing_left_arm_and_ears")
    plain = [None if p is None else [p[0], p[1]] for p in keypoints]
    array = np.array([(np.nan, np.nan) if p is None else p for p in keypoints])
    expected = reference_labels["missing_left_arm_and_ears"]
    assert np.array_equal(to_uint8(render_pose_label(plain)), expected)
    assert np.array_equal(to_uint8(render_pose_label(array)), expected)


# --------------------------------------------------------------------------- errors


def write_pose(tmp_path: Path, candidate: str, subset: str) -> tuple[Path, Path]:
    (tmp_path / "p_candidate.txt").write_text(candidate)
    (tmp_path / "p_subset.txt").write_text(subset)
    return tmp_path / "p_candidate.txt", tmp_path / "p_subset.txt"


SUBSET_ALL_ZERO = "0\n" * 18 + "1\n1\n"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere_candidate.txt"):
        load_openpose_keypoints(tmp_path / "nowhere_candidate.txt", FIXTURES / "full_subset.txt")


@pytest.mark.parametrize(
    "candidate, subset, message",
    [
        ("1 2 0.9 0\n3 x 0.9 1\n", SUBSET_ALL_ZERO, "malformed pose file .*p_candidate.txt.*could not convert"),
        ("1 2 0.9 0\n3 4 0.9\n", SUBSET_ALL_ZERO, "p_candidate.txt.*different numbers of columns"),
        ("1 2 0.9\n", SUBSET_ALL_ZERO, "p_candidate.txt.*expected 4 columns"),
        ("1 2 0.9 0\n", "0\n" * 17, "p_subset.txt.*at least 18 entries, got 17"),
        ("1 2 0.9 0\n", "0 0\n" * 18, "p_subset.txt.*one number per line"),
        ("1 2 0.9 0\n", "0\n" * 5 + "3\n" + "0\n" * 14, "p_subset.txt.*entry 5 is 3.0.*row 0..0"),
        ("1 2 0.9 0\n", "0\n" * 5 + "-2\n" + "0\n" * 14, "p_subset.txt.*entry 5 is -2.0"),
        ("1 2 0.9 0\n", "0.5\n" + "0\n" * 19, "p_subset.txt.*entry 0 is 0.5"),
        ("1 nan 0.9 0\n", SUBSET_ALL_ZERO, "p_candidate.txt.*non-finite"),
    ],
    ids=["non-numeric", "ragged", "3-columns", "short-subset", "subset-row", "row-out-of-range",
         "negative-row", "fractional-row", "nan"],  # fmt: skip
)
def test_malformed_text_files_are_named(tmp_path, candidate, subset, message):
    with pytest.raises(ValueError, match=message):
        load_openpose_keypoints(*write_pose(tmp_path, candidate, subset))


def test_bad_json_file_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"people": [')
    with pytest.raises(ValueError, match="invalid OpenPose JSON in .*broken.json"):
        load_openpose_json(path)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        load_openpose_json(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "document, person, message",
    [
        ({"people": []}, 0, "no people"),
        ({"version": 1.3}, 0, "no people"),
        ({"people": [{"pose_keypoints_2d": [0.0] * 54}]}, 1, "has 1 people; person 1 does not exist"),
        ({"people": [{"face_keypoints_2d": []}]}, 0, "no 'pose_keypoints_2d'"),
        ({"people": [{"pose_keypoints_2d": [0.0] * 51}]}, 0, "has 51 values; expected 54 .* or 75"),
    ],
)
def test_bad_json_content_is_explained(document, person, message):
    with pytest.raises(ValueError, match=message):
        load_openpose_json(document, person=person)


@pytest.mark.parametrize(
    "keypoints, message",
    [
        ([None] * 17, "expected 18 keypoints .* got 17"),
        ([None] * 17 + [(1.0, float("inf"))], "keypoint 17 has a non-finite coordinate"),
        ([None] * 17 + [(1.0, 2.0, 3.0)], "keypoint 17 must be None or an \\(x, y\\) pair"),
        ([None] * 17 + ["ab"], "keypoint 17 must be None or an \\(x, y\\) pair"),
        (np.zeros((18, 3)), "shape \\(18, 2\\)"),
    ],
)
def test_invalid_keypoints_are_explained(keypoints, message):
    with pytest.raises(ValueError, match=message):
        normalize_keypoints(keypoints)


# --------------------------------------------------------------------------- photos


def test_photo_is_padded_centred_with_grey_232():
    photo = Image.new("RGB", (750, 1101), (10, 20, 30))
    square = np.asarray(pad_to_square(photo))
    assert square.shape == (1101, 1101, 3)
    # 351 columns of padding: 175 on the left, 176 on the right.
    assert (square[:, :175] == 232).all() and (square[:, 925:] == 232).all()
    assert (square[:, 175:925] == (10, 20, 30)).all()


def test_keypoints_follow_the_padding_and_resize():
    photo_points = [(0.0, 0.0), (750.0, 1101.0)] + [None] * 16
    canvas_points = scale_keypoints_to_canvas(photo_points, (750, 1101))
    scale = 1024 / 1101
    assert canvas_points[0] == pytest.approx((175 * scale, 0.0))
    assert canvas_points[1] == pytest.approx((925 * scale, 1024.0))
    assert canvas_points[2:] == [None] * 16


def test_exemplar_photo_is_square_rgb_with_grey_borders():
    exemplar = prepare_exemplar_photo(Image.new("L", (750, 1101), 0))
    assert exemplar.mode == "RGB" and exemplar.size == (512, 512)
    assert exemplar.getpixel((0, 256)) == (232, 232, 232) and exemplar.getpixel((256, 256)) == (0, 0, 0)
