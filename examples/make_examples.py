"""Regenerate the demo examples of the pose-to-body, edge-to-face and oil-portrait tabs.

Everything here is made by this script (hand-written keypoints, OpenCV drawings) except the
photos and portraits, which are downscaled copies of the public-domain images in
``tests/fixtures/photos`` (sources in ``examples/README.md``)::

    python examples/make_examples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "tests" / "fixtures" / "photos"

# ----------------------------------------------------------------------------- pose-to-body

# OpenPose COCO-18 keypoints on the 1024×1024 canvas (x, y): nose, neck, right shoulder,
# elbow, wrist, left shoulder, elbow, wrist, right hip, knee, ankle, left hip, knee, ankle,
# right eye, left eye, right ear, left ear ("right" = the person's right, image left).
_HEAD = [(512, 150), (512, 235)]
_FACE = [(497, 136), (527, 136), (480, 146), (544, 146)]
POSES = {
    "standing": _HEAD + [(436, 248), (414, 372), (404, 492), (588, 248), (610, 372), (620, 492),
                         (466, 505), (460, 688), (456, 868), (558, 505), (564, 688), (568, 868)] + _FACE,
    "waving": _HEAD + [(436, 248), (378, 168), (356, 66), (588, 248), (622, 368), (600, 470),
                       (466, 505), (462, 688), (458, 868), (558, 505), (562, 688), (566, 868)] + _FACE,
    "walking": _HEAD + [(436, 248), (446, 374), (486, 480), (588, 248), (560, 370), (536, 478),
                        (470, 505), (430, 690), (396, 866), (556, 505), (588, 682), (626, 858)] + _FACE,
}  # fmt: skip

# (shirt, trousers, skin, hair, shoes) per mannequin
OUTFITS = {
    "standing": ((200, 40, 40), (40, 50, 110), (224, 180, 150), (60, 40, 30), (30, 30, 30)),
    "waving": ((240, 200, 60), (90, 90, 90), (180, 130, 100), (20, 20, 20), (120, 60, 30)),
    "walking": ((40, 140, 90), (200, 190, 160), (240, 200, 175), (150, 100, 50), (230, 230, 230)),
}
CROP_LEFT, CROP_WIDTH = 80, 352  # a 352×512 portrait photo: padded to square (80 px each side) and ×2 gives the canvas


def openpose_json(keypoints: list[tuple[float, float]]) -> dict:
    flat = [v for x, y in keypoints for v in (float(x), float(y), 1.0)]
    return {"version": 1.3, "people": [{"pose_keypoints_2d": flat}]}


def mannequin(keypoints: list[tuple[float, float]], outfit) -> Image.Image:
    """A flat-shaded figure drawn at the keypoints (half the canvas scale), cropped to 352×512."""
    shirt, trousers, skin, hair, shoes = (tuple(int(c) for c in colour) for colour in outfit)
    canvas = np.full((512, 512, 3), 236, np.uint8)
    canvas[:] = np.linspace(246, 222, 512, dtype=np.float32)[:, None, None].astype(np.uint8)  # soft floor gradient
    p = [(int(round(x / 2)), int(round(y / 2))) for x, y in keypoints]

    def limb(a: int, b: int, colour, width: int) -> None:
        cv2.line(canvas, p[a], p[b], colour, width, cv2.LINE_AA)
        cv2.circle(canvas, p[b], width // 2, colour, -1, cv2.LINE_AA)

    for hip, knee, ankle in ((8, 9, 10), (11, 12, 13)):  # legs
        limb(hip, knee, trousers, 30)
        limb(knee, ankle, trousers, 24)
        cv2.ellipse(canvas, (p[ankle][0], p[ankle][1] + 6), (16, 8), 0, 0, 360, shoes, -1, cv2.LINE_AA)
    torso = np.array([p[2], p[5], p[11], p[8]], np.int32)
    cv2.fillConvexPoly(canvas, torso, trousers, cv2.LINE_AA)
    chest = np.array([p[2], p[5], ((p[5][0] + p[11][0]) // 2, (p[5][1] + 2 * p[11][1]) // 3),
                      ((p[2][0] + p[8][0]) // 2, (p[2][1] + 2 * p[8][1]) // 3)], np.int32)  # fmt: skip
    cv2.fillConvexPoly(canvas, chest, shirt, cv2.LINE_AA)
    limb(1, 0, skin, 20)  # neck
    for shoulder, elbow, wrist in ((2, 3, 4), (5, 6, 7)):  # arms
        limb(shoulder, elbow, shirt, 22)
        limb(elbow, wrist, skin, 16)
    cv2.ellipse(canvas, p[0], (28, 36), 0, 0, 360, skin, -1, cv2.LINE_AA)  # head
    cv2.ellipse(canvas, (p[0][0], p[0][1] - 14), (30, 24), 0, 180, 360, hair, -1, cv2.LINE_AA)
    for eye in (14, 15):
        cv2.circle(canvas, p[eye], 3, (40, 30, 30), -1, cv2.LINE_AA)
    return Image.fromarray(canvas[:, CROP_LEFT : CROP_LEFT + CROP_WIDTH])


def make_pose_examples(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = list(POSES)
    for name in names:
        (folder / f"{name}.json").write_text(json.dumps(openpose_json(POSES[name])) + "\n")
        mannequin(POSES[name], OUTFITS[name]).save(folder / f"mannequin_{name}.png", optimize=True)
    rows = [
        {"structure": f"{a}.json", "exemplar": f"mannequin_{b}.png", "exemplar_structure": f"{b}.json", "label": f"{a} pose, {b} mannequin's look"}
        for a, b in zip(names, names[1:] + names[:1])
    ]
    gallery = [{"exemplar": f"mannequin_{n}.png", "exemplar_structure": f"{n}.json", "label": n} for n in names]
    _manifest(folder, rows, gallery)


# ----------------------------------------------------------------------------- faces


def face_edges(size: int = 256) -> Image.Image:
    """A front-facing face drawn as 1-px white lines on black (OpenCV), the form edge maps take."""
    s = size / 256
    canvas = np.zeros((size, size), np.uint8)

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x * s)), int(round(y * s))

    def ellipse(c, axes, start, end, angle=0) -> None:
        cv2.ellipse(canvas, pt(*c), pt(*axes), angle, start, end, 255, 1)

    ellipse((128, 136), (62, 82), 0, 360)  # face oval
    ellipse((128, 118), (78, 92), 180, 360)  # hair line
    for x in (104, 152):
        ellipse((x, 120), (14, 6), 0, 360)  # eyes
        cv2.circle(canvas, pt(x, 120), int(4 * s), 255, 1)
        ellipse((x, 106), (16, 5), 190, 350)  # brows
    cv2.polylines(canvas, [np.array([pt(128, 122), pt(121, 158), pt(128, 162), pt(135, 158)], np.int32)], False, 255, 1)
    ellipse((128, 180), (20, 6), 10, 170)  # lower lip
    cv2.line(canvas, pt(109, 178), pt(147, 178), 255, 1)  # mouth
    for x in (62, 194):
        ellipse((x, 138), (6, 16), 0, 360)  # ears
    cv2.line(canvas, pt(104, 214), pt(100, 256), 255, 1)  # neck
    cv2.line(canvas, pt(152, 214), pt(156, 256), 255, 1)
    return Image.fromarray(canvas)


def downscale(source: Path, target: Path, side: int = 384) -> None:
    with Image.open(source) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side), Image.LANCZOS)
        image.save(target, quality=88, optimize=True)


def make_face_examples(edge_folder: Path, oil_folder: Path, photo_folder: Path) -> None:
    for folder in (edge_folder, oil_folder, photo_folder):
        folder.mkdir(parents=True, exist_ok=True)
    photos = {"astronaut": "astronaut.jpg", "grace_hopper": "grace_hopper.jpg"}
    portraits = {"morisot_self_portrait_1885": "morisot_self_portrait_1885.jpg", "morisot_young_woman_in_mauve": "morisot_young_woman_in_mauve.jpg"}
    for name, file in {**photos, **portraits}.items():
        downscale(PHOTOS / file, photo_folder / f"{name}.jpg")
    face_edges().save(edge_folder / "drawn_face_edges.png", optimize=True)
    gallery = [{"exemplar": f"../photos/{n}.jpg", "label": n.replace("_", " ")} for n in portraits]
    edge_rows = [
        {"structure": "drawn_face_edges.png", "exemplar": "../photos/morisot_young_woman_in_mauve.jpg", "label": "drawn edges"},
        {"structure": "../photos/astronaut.jpg", "exemplar": "../photos/morisot_self_portrait_1885.jpg", "label": "photo → edges"},
    ]
    _manifest(edge_folder, edge_rows, gallery)
    oil_rows = [
        {"structure": "../photos/grace_hopper.jpg", "exemplar": "../photos/morisot_self_portrait_1885.jpg", "label": "Grace Hopper × Morisot"},
        {"structure": "../photos/astronaut.jpg", "exemplar": "../photos/morisot_young_woman_in_mauve.jpg", "label": "astronaut × Morisot"},
    ]
    _manifest(oil_folder, oil_rows, gallery)


def _manifest(folder: Path, rows: list[dict], gallery: list[dict]) -> None:
    (folder / "examples.json").write_text(json.dumps({"examples": rows, "gallery": gallery}, indent=2) + "\n")


if __name__ == "__main__":
    make_pose_examples(HERE / "pose-to-body")
    make_face_examples(HERE / "edge-to-face", HERE / "oil-portrait", HERE / "photos")
    print(f"wrote examples under {HERE}")
