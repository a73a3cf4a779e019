"""Body keypoints and the DeepFashionHD pose label (docs/architecture.md §10): a data format.

A pose is 18 OpenPose keypoints (COCO-18 order) in pixel coordinates of the
1024×1024 canvas. It is rendered into the 20-channel label the published
CoCosNet v2 data loader builds: 3 channels of coloured skeleton (circles and
translucent limb ellipses) and 17 channels of per-limb L1 distance maps.

Bit-exactness: ``render_pose_label`` reproduces the published loader's labels
exactly (checked against ``tests/fixtures/pose/pose_labels.npz`` with
opencv-python-headless 5.0.0 and Pillow 12.3.0). What matters is doing every
step as the loader does: Python ``int()`` truncation of centres, axes and the
angle; ``cv2.ellipse2Poly`` with delta 1; ``cv2.addWeighted`` on uint8 (its own
rounding and saturation); the distance map truncated to uint8 *before* the PIL
BILINEAR resize; PIL NEAREST for the colour channels. Rendering stays in uint8
and is divided by 255 only at the end, so ``(label * 255).round()`` gives back
the loader's uint8 values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np
import torch
from PIL import Image


__all__ = [
    "CANVAS_SIZE",
    "NUM_KEYPOINTS",
    "PAD_FILL",
    "POSE_LABEL_CHANNELS",
    "Keypoints",
    "load_openpose_json",
    "load_openpose_keypoints",
    "normalize_keypoints",
    "pad_to_square",
    "prepare_exemplar_photo",
    "render_pose_image",
    "render_pose_label",
    "scale_keypoints_to_canvas",
]

Keypoints = list[Optional[tuple[float, float]]]
"""18 entries in OpenPose COCO-18 order; ``None`` marks a missing keypoint."""

NUM_KEYPOINTS = 18
POSE_LABEL_CHANNELS = 20  # 3 skeleton colour channels + 17 limb distance maps
CANVAS_SIZE = 1024
PAD_FILL = 232  # grey used to pad DeepFashion photos to a square

_STICK_WIDTH = 20
_CIRCLE_RADIUS = 20

# Limbs as 1-based keypoint pairs: the first 17 of OpenPose's 19 pairs
# ((3, 17) and (6, 18) are not drawn by the published loader).
_LIMBS = [
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11),
    (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18),
]  # fmt: skip

# Colour i is used for keypoint i's circle and for limb i. Drawn on a canvas
# that is then converted BGR→RGB, so the final image shows them reversed.
_COLORS = [
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
    (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
    (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255),
    (255, 0, 255), (255, 0, 170), (255, 0, 85),
]  # fmt: skip

# BODY_25 index of each COCO-18 keypoint (BODY_25 adds mid-hip at 8 and feet at 19..24).
_BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]

PathLike = Union[str, Path]


# --------------------------------------------------------------------------- inputs


def normalize_keypoints(keypoints: Sequence[Any] | np.ndarray) -> Keypoints:
    """Validate keypoints and return them as a list of 18 ``(x, y)`` or ``None``.

    Accepts a sequence of 18 entries, each ``None`` or an ``(x, y)`` pair of finite
    numbers, or a numpy array of shape 18×2 whose rows containing NaN are missing.
    Coordinates are on the 1024×1024 canvas (see ``scale_keypoints_to_canvas``).

    Raises:
        ValueError: wrong number of keypoints, an entry that is not a pair, or a
            non-finite coordinate.
    """
    if isinstance(keypoints, np.ndarray):
        if keypoints.shape != (NUM_KEYPOINTS, 2):
            raise ValueError(f"keypoint array must have shape (18, 2), got {keypoints.shape}")
        keypoints = [None if np.isnan(row).any() else tuple(row) for row in keypoints]
    if len(keypoints) != NUM_KEYPOINTS:
        raise ValueError(f"expected {NUM_KEYPOINTS} keypoints (OpenPose COCO-18), got {len(keypoints)}")
    result: Keypoints = []
    for i, point in enumerate(keypoints):
        if point is None:
            result.append(None)
            continue
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise ValueError(f"keypoint {i} must be None or an (x, y) pair of numbers, got {point!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"keypoint {i} has a non-finite coordinate: ({x}, {y})")
        result.append((x, y))
    return result


def _load_table(path: PathLike) -> np.ndarray:
    """Read a whitespace-separated numeric text file as a 2-D float array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pose file not found: {path}")
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        widths = {len(row) for row in rows}
        if len(widths) > 1:
            raise ValueError(f"rows have different numbers of columns {sorted(widths)}")
        return np.array(rows, dtype=np.float64).reshape(len(rows), widths.pop() if rows else 0)
    except ValueError as error:
        raise ValueError(f"malformed pose file {path}: {error}") from None


def load_openpose_keypoints(candidate_path: PathLike, subset_path: PathLike) -> Keypoints:
    """Read keypoints from the DeepFashionHD ``_candidate.txt`` / ``_subset.txt`` pair.

    The candidate file has one row per detected keypoint: ``x y score id``. The
    subset file has one number per line: for keypoints 0..17 the candidate row
    (−1 = missing), followed by two trailing numbers that are ignored.

    Raises:
        FileNotFoundError: a file does not exist (the message names it).
        ValueError: a file is malformed — wrong column count, fewer than 18 subset
            entries, or a subset entry that is not −1 or a valid candidate row.
    """
    candidate = _load_table(candidate_path)
    subset = _load_table(subset_path)
    if len(candidate) and candidate.shape[1] != 4:
        raise ValueError(
            f"malformed candidate file {candidate_path}: expected 4 columns (x y score id), got {candidate.shape[1]}"
        )
    if len(subset) and subset.shape[1] != 1:
        raise ValueError(f"malformed subset file {subset_path}: expected one number per line, got {subset.shape[1]}")
    if len(subset) < NUM_KEYPOINTS:
        raise ValueError(f"malformed subset file {subset_path}: expected at least 18 entries, got {len(subset)}")
    keypoints = []
    for i, value in enumerate(subset[:NUM_KEYPOINTS, 0]):
        if not (value.is_integer() and -1 <= value < len(candidate)):
            raise ValueError(
                f"malformed subset file {subset_path}: entry {i} is {value}, expected -1 or a candidate "
                f"row 0..{len(candidate) - 1} of {candidate_path}"
            )
        keypoints.append(None if value == -1 else candidate[int(value), :2])
    try:
        return normalize_keypoints(keypoints)
    except ValueError as error:
        raise ValueError(f"malformed candidate file {candidate_path}: {error}") from None


def load_openpose_json(path_or_dict: PathLike | dict[str, Any], person: int = 0) -> Keypoints:
    """Read one person's keypoints from OpenPose's JSON output.

    Uses ``people[person].pose_keypoints_2d``: flat ``x, y, confidence`` triples,
    either 18 points (COCO-18, used as is) or 25 points (BODY_25, mapped to the
    COCO-18 order by dropping mid-hip and the six foot points). A confidence of 0
    marks a missing keypoint. Coordinates are used as given (on the 1024 canvas;
    see ``scale_keypoints_to_canvas`` for photo coordinates).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: invalid JSON, no such person, or a keypoint list whose length
            is not 54 or 75.
    """
    source = "OpenPose JSON"
    if isinstance(path_or_dict, dict):
        data = path_or_dict
    else:
        path = Path(path_or_dict)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"OpenPose JSON file not found: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"invalid OpenPose JSON in {path}: {error}") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not people:
        raise ValueError(f"{source} has no people (expected a non-empty 'people' list)")
    if not 0 <= person < len(people):
        raise ValueError(f"{source} has {len(people)} people; person {person} does not exist")
    flat = people[person].get("pose_keypoints_2d") if isinstance(people[person], dict) else None
    if flat is None:
        raise ValueError(f"{source}: person {person} has no 'pose_keypoints_2d'")
    if len(flat) == 3 * NUM_KEYPOINTS:
        order = list(range(NUM_KEYPOINTS))
    elif len(flat) == 3 * 25:
        order = _BODY25_TO_COCO18
    else:
        raise ValueError(
            f"{source}: pose_keypoints_2d has {len(flat)} values; expected 54 (COCO-18) or 75 (BODY_25) x, y, c triples"
        )
    triples = np.asarray(flat, dtype=np.float64).reshape(-1, 3)[order]
    return normalize_keypoints([None if c == 0 else (x, y) for x, y, c in triples])


# --------------------------------------------------------------------------- rendering


def _draw_skeleton(keypoints: Keypoints) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw the pose on the 1024 canvas, as the published loader does.

    Returns the RGB uint8 skeleton image and the 17 single-channel limb masks
    (255 inside the limb's ellipse; all zeros for a limb with a missing end).
    """
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 3), np.uint8)
    for point, color in zip(keypoints, _COLORS):
        if point is not None:
            cv2.circle(canvas, (int(point[0]), int(point[1])), _CIRCLE_RADIUS, color, thickness=-1)
    limb_masks = []
    for (a, b), color in zip(_LIMBS, _COLORS):
        mask = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
        start, end = keypoints[a - 1], keypoints[b - 1]
        if start is not None and end is not None:
            polygon = _limb_polygon(start, end)
            limb = canvas.copy()
            cv2.fillConvexPoly(limb, polygon, color)
            canvas = cv2.addWeighted(canvas, 0.4, limb, 0.6, 0)
            cv2.fillConvexPoly(mask, polygon, 255)
        limb_masks.append(mask)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), limb_masks


def _limb_polygon(start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """The ellipse polygon of one limb (every number truncated with ``int()``)."""
    dx, dy = start[0] - end[0], start[1] - end[1]
    centre = (int((start[0] + end[0]) / 2), int((start[1] + end[1]) / 2))
    half_length = int(math.sqrt(dx * dx + dy * dy) / 2)
    angle = int(math.degrees(math.atan2(dy, dx)))
    return cv2.ellipse2Poly(centre, (half_length, _STICK_WIDTH), angle, 0, 360, 1)


def _limb_distance_map(mask: np.ndarray, size: int) -> np.ndarray:
    """L1 distance to the limb, /3, truncated to uint8, PIL-bilinear resized."""
    distance = cv2.distanceTransform(255 - mask, cv2.DIST_L1, 3)
    distance = np.clip(distance / 3, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(distance).resize((size, size), Image.BILINEAR))


def render_pose_image(keypoints: Sequence[Any] | np.ndarray, size: int = 512) -> Image.Image:
    """The coloured RGB skeleton (the label's first 3 channels) as a ``size``² image."""
    skeleton, _ = _draw_skeleton(normalize_keypoints(keypoints))
    return Image.fromarray(skeleton).resize((size, size), Image.NEAREST)


def render_pose_label(keypoints: Sequence[Any] | np.ndarray, size: int = 512, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Render the 20-channel DeepFashionHD pose label (docs/architecture.md §10).

    Args:
        keypoints: 18 keypoints on the 1024×1024 canvas (anything
            ``normalize_keypoints`` accepts).
        size: output side length (512 in the release).
        dtype: the label's dtype (the uint8 maps are divided by 255 in it).

    Returns:
        tensor ``20×size×size`` in [0, 1] (``dtype``, default float32): the RGB skeleton (NEAREST
        resized) followed by 17 limb distance maps (BILINEAR resized; a limb with a
        missing end is all ones). Values are multiples of 1/255.
    """
    skeleton, limb_masks = _draw_skeleton(normalize_keypoints(keypoints))
    skeleton = np.asarray(Image.fromarray(skeleton).resize((size, size), Image.NEAREST))
    channels = [*skeleton.transpose(2, 0, 1), *(_limb_distance_map(mask, size) for mask in limb_masks)]
    return torch.from_numpy(np.stack(channels)).to(dtype).div(255)


# --------------------------------------------------------------------------- photos


def _square_padding(width: int, height: int) -> tuple[int, int, int]:
    """Side of the padded square and the (left, top) offset of the centred photo."""
    side = max(width, height)
    return side, (side - width) // 2, (side - height) // 2


def pad_to_square(image: Image.Image, fill: int = PAD_FILL) -> Image.Image:
    """Pad ``image`` to a square with grey ``fill``, keeping the photo centred.

    The padding is split evenly between both sides (the extra pixel of an odd
    difference goes right / bottom), e.g. a 750×1101 DeepFashion photo gets 175
    columns on the left and 176 on the right.
    """
    side, left, top = _square_padding(*image.size)
    bands = len(image.getbands())
    square = Image.new(image.mode, (side, side), fill if bands == 1 else (fill,) * bands)
    square.paste(image, (left, top))
    return square


def scale_keypoints_to_canvas(
    keypoints: Sequence[Any] | np.ndarray, original_size: tuple[int, int], canvas_size: int = CANVAS_SIZE
) -> Keypoints:
    """Map keypoints from photo pixels to the square canvas.

    ``original_size`` is the photo's ``(width, height)``. The mapping matches
    ``pad_to_square`` (centred) followed by a resize to ``canvas_size``:
    ``x' = (x + left) · canvas_size / side`` (likewise for y). Missing stay missing.
    """
    side, left, top = _square_padding(*original_size)
    scale = canvas_size / side
    return [
        None if point is None else ((point[0] + left) * scale, (point[1] + top) * scale)
        for point in normalize_keypoints(keypoints)
    ]


def prepare_exemplar_photo(image: Image.Image, size: int = 512) -> Image.Image:
    """Pad a photo to a square with grey 232 (centred) and bicubic-resize it to ``size``."""
    return pad_to_square(image.convert("RGB")).resize((size, size), Image.BICUBIC)
