"""Procedural landscape scenes in ADE20k class ids: the demo model's training data.

A scene is a layout (sky above a horizon, an optional mountain ridge, sea with a sand
beach or grass/sand/earth ground, roads, buildings, trees and rocks, with random
geometry) and a *palette*: per class two colours, drawn per scene from broad
class-typical ranges (a sky may be blue, grey, orange or pink; grass green or straw…)
with a shared "light" tint. Every class is painted with its own procedural texture
(sky gradient with clouds, ridged mountain noise with snow, waves, grass blades, leafy
tree crowns, sand ripples, cracked rock, window grids, asphalt with lane marks) mixing
its two colours, so the structure alone does not tell the colours: the exemplar does.

Index masks use the ADE20k numbering of :mod:`pipeline_cocosnet.processing.formats.ade20k`
(0 = unknown, 1..150), only the ids in :data:`SCENE_CLASSES`. Everything is a pure
function of the seeds and is drawn in normalised coordinates, so one seed gives the same
scene at any size (up to rasterisation).

:class:`ScenesDataset` (``data.kind: scenes``) serves them for training: the exemplar is
the target under a random affine warp and colour jitter (the base class's self-supervised
pair, with the warp loss against the jittered target), or, with probability
``data.scene_pair_probability``, another layout painted with the *same palette*
(``same_content`` stays 1: the warp loss then asks for a class-wise colour transfer
across layouts, which is how the demo model is used).
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from ...processing.formats.ade20k import ADE20K_CLASSES, ADE20K_LABEL_CHANNELS
from .ade20k import one_hot
from .base import PairedDataset, image_to_tensor

__all__ = [
    "SCENE_CLASSES",
    "SCENE_CLASS_IDS",
    "make_layout",
    "make_palette",
    "render_scene",
    "make_scene",
    "transformed_pair",
    "write_scenes_folder",
    "ScenesDataset",
]

_NAMES = ("sky", "mountain", "sea", "water", "grass", "tree", "sand", "rock", "building", "road", "earth")
#: class name → ADE20k id (1-based, as in ``ADE20K_CLASSES``)
SCENE_CLASSES: dict[str, int] = {name: ADE20K_CLASSES.index(name) + 1 for name in _NAMES}
#: the ids a scene mask can contain
SCENE_CLASS_IDS: frozenset[int] = frozenset(SCENE_CLASSES.values())

# class-typical colour ranges: (hue range in degrees, saturation range, value range) per colour slot;
# several alternatives per class (picked per scene)
_HSV_RANGES: dict[str, list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]] = {
    "sky": [((195, 225), (0.3, 0.8), (0.75, 1.0)), ((15, 45), (0.4, 0.8), (0.8, 1.0)), ((300, 340), (0.2, 0.5), (0.7, 0.95)), ((200, 220), (0.02, 0.15), (0.6, 0.9))],
    "mountain": [((200, 260), (0.1, 0.4), (0.35, 0.7)), ((20, 40), (0.2, 0.5), (0.3, 0.6)), ((90, 140), (0.2, 0.5), (0.25, 0.5))],
    "sea": [((185, 225), (0.4, 0.9), (0.35, 0.8)), ((160, 185), (0.3, 0.7), (0.4, 0.7))],
    "water": [((180, 220), (0.3, 0.8), (0.3, 0.7)), ((120, 170), (0.2, 0.5), (0.3, 0.5))],
    "grass": [((80, 130), (0.4, 0.9), (0.35, 0.8)), ((45, 65), (0.4, 0.7), (0.55, 0.85))],
    "tree": [((85, 150), (0.4, 0.9), (0.15, 0.5)), ((15, 45), (0.6, 0.95), (0.5, 0.85))],
    "sand": [((30, 50), (0.2, 0.5), (0.7, 0.95)), ((15, 30), (0.3, 0.6), (0.55, 0.8))],
    "rock": [((0, 360), (0.0, 0.12), (0.3, 0.7)), ((20, 40), (0.15, 0.35), (0.3, 0.6))],
    "building": [((0, 360), (0.0, 0.15), (0.55, 0.95)), ((5, 25), (0.4, 0.7), (0.45, 0.75)), ((35, 55), (0.2, 0.4), (0.7, 0.9))],
    "road": [((0, 360), (0.0, 0.06), (0.18, 0.45))],
    "earth": [((20, 40), (0.35, 0.65), (0.3, 0.6))],
}


# ---------------------------------------------------------------------------- layout


def _ridge(rng: np.random.Generator, points: int, roughness: float) -> np.ndarray:
    """A 1-D midpoint-displacement profile of ``points`` values in about [-1, 1]."""
    n = 1
    values = rng.uniform(-1, 1, size=2)
    scale = 1.0
    while n < points - 1:
        mid = (values[:-1] + values[1:]) / 2 + rng.uniform(-scale, scale, size=len(values) - 1)
        merged = np.empty(len(values) * 2 - 1)
        merged[0::2], merged[1::2] = values, mid
        values, n, scale = merged, n * 2, scale * roughness
    x = np.linspace(0, 1, len(values))
    return np.interp(np.linspace(0, 1, points), x, values) / 1.5


def make_layout(seed: int) -> dict[str, Any]:
    """The random geometry of a scene, in normalised coordinates (x, y in [0, 1], y down)."""
    rng = np.random.default_rng([int(seed), 1])
    horizon = float(rng.uniform(0.3, 0.62))
    layout: dict[str, Any] = {"horizon": horizon, "horizon_tilt": float(rng.uniform(-0.04, 0.04))}
    if rng.random() < 0.75:
        height = rng.uniform(0.12, 0.4)
        ridge = _ridge(rng, 65, rng.uniform(0.45, 0.65))
        ridge = horizon - height * (0.55 + 0.45 * ridge)
        layout["mountain"] = ridge.tolist()
        if rng.random() < 0.4:  # a second, nearer range
            ridge2 = _ridge(rng, 65, rng.uniform(0.4, 0.6))
            layout["mountain2"] = (horizon - height * 0.5 * (0.6 + 0.4 * ridge2)).tolist()
    ground = rng.choice(["sea", "grass", "grass", "sand", "earth"])
    layout["ground"] = str(ground)
    if ground == "sea":
        shore = _ridge(rng, 33, 0.5)
        layout["shore"] = (horizon + rng.uniform(0.12, 0.4) * (1 - horizon) * (1 + 0.25 * shore)).tolist()
        layout["beach"] = str(rng.choice(["sand", "sand", "grass", "rock"]))
    elif rng.random() < 0.35:  # a lake or river band
        top = horizon + rng.uniform(0.05, 0.4) * (1 - horizon)
        edge = _ridge(rng, 33, 0.5)
        layout["lake"] = [float(top), float(rng.uniform(0.04, 0.15)), edge.tolist()]
    if ground != "sea" and rng.random() < 0.45:
        vanish = float(rng.uniform(0.2, 0.8))
        half = float(rng.uniform(0.12, 0.45))
        centre = float(rng.uniform(0.1, 0.9))
        layout["road"] = [vanish, centre, half]
    buildings = []
    if rng.random() < 0.45:
        for _ in range(int(rng.integers(1, 6))):
            x = float(rng.uniform(-0.05, 0.95))
            w = float(rng.uniform(0.06, 0.25))
            h = float(rng.uniform(0.08, 0.4)) * horizon * 1.6
            base = horizon + float(rng.uniform(0.0, 0.08))
            roof = float(rng.uniform(0, 1)) < 0.35
            buildings.append([x, w, h, base, roof])
    layout["buildings"] = buildings
    trees = []
    if rng.random() < 0.7:
        for _ in range(int(rng.integers(1, 8))):
            x = float(rng.uniform(0, 1))
            base = float(rng.uniform(horizon + 0.02, 1.05))
            depth = (base - horizon) / (1 - horizon)
            size = float(rng.uniform(0.04, 0.1) * (0.5 + 1.5 * depth))
            trees.append([x, base, size, float(rng.uniform(1.0, 2.2)), int(rng.integers(0, 2**31))])
    layout["trees"] = sorted(trees, key=lambda t: t[1])  # far first
    rocks = []
    if rng.random() < 0.45:
        for _ in range(int(rng.integers(1, 5))):
            x = float(rng.uniform(0, 1))
            y = float(rng.uniform(horizon + 0.05, 1.02))
            r = float(rng.uniform(0.03, 0.1) * (0.5 + (y - horizon) / (1 - horizon)))
            rocks.append([x, y, r, int(rng.integers(0, 2**31))])
    layout["rocks"] = rocks
    return layout


def _poly(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    h, w = mask.shape
    pts = np.round(points * np.array([w, h])).astype(np.int32)
    cv2.fillPoly(mask, [pts], int(value))


def _profile_region(mask: np.ndarray, profile: list[float], value: int, below: float = 1.5) -> None:
    """Fill between the polyline ``profile`` (y per x, evenly spaced) and y = ``below``."""
    xs = np.linspace(0, 1, len(profile))
    points = np.concatenate([np.stack([xs, np.asarray(profile)], 1), [[1.0, below], [0.0, below]]])
    _poly(mask, np.concatenate([points, points[:1]]), value)


def rasterise_layout(layout: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """The H×W uint8 ADE20k index mask of ``layout``."""
    h, w = size
    c = SCENE_CLASSES
    mask = np.full((h, w), c["sky"], np.uint8)
    horizon, tilt = layout["horizon"], layout["horizon_tilt"]
    xs = np.linspace(0, 1, 33)
    horizon_line = (horizon + tilt * (xs - 0.5)).tolist()
    if "mountain" in layout:
        _profile_region(mask, layout["mountain"], c["mountain"])
    if "mountain2" in layout:
        _profile_region(mask, layout["mountain2"], c["mountain"])
    ground = layout["ground"]
    _profile_region(mask, horizon_line, c[ground] if ground != "sea" else c["sea"])
    if ground == "sea":
        _profile_region(mask, layout["shore"], c[layout["beach"]])
    for x, wd, hg, base, roof in layout["buildings"]:
        body = np.array([[x, base], [x + wd, base], [x + wd, base - hg], [x, base - hg]])
        _poly(mask, body, c["building"])
        if roof:
            _poly(mask, np.array([[x - 0.01, base - hg], [x + wd + 0.01, base - hg], [x + wd / 2, base - hg - wd * 0.45]]), c["building"])
    if "lake" in layout:
        top, depth, edge = layout["lake"]
        ex = np.linspace(0, 1, len(edge))
        upper = top + 0.01 * np.asarray(edge)
        lower = top + depth * (1 + 0.3 * np.asarray(edge))
        _poly(mask, np.concatenate([np.stack([ex, upper], 1), np.stack([ex, lower], 1)[::-1]]), c["water"])
    if "road" in layout:
        vanish, centre, half = layout["road"]
        y0 = horizon + tilt * (vanish - 0.5)
        _poly(mask, np.array([[vanish - 0.004, y0], [vanish + 0.004, y0], [centre + half, 1.01], [centre - half, 1.01]]), c["road"])
    for x, y, r, s in layout["rocks"]:
        rr = np.random.default_rng(s)
        angles = np.sort(rr.uniform(0, 2 * np.pi, size=9))
        radii = r * rr.uniform(0.6, 1.0, size=9)
        pts = np.stack([x + radii * np.cos(angles) * 1.3, y - np.abs(radii * np.sin(angles)) * (np.sin(angles) < 0) * 1.4 + radii * np.sin(angles) * (np.sin(angles) > 0) * 0.25], 1)
        _poly(mask, pts, c["rock"])
    for x, base, size_, stretch, s in layout["trees"]:
        rr = np.random.default_rng(s)
        trunk = size_ * 0.18
        top = base - size_ * stretch * 0.5
        _poly(mask, np.array([[x - trunk / 2, base], [x + trunk / 2, base], [x + trunk / 2, top], [x - trunk / 2, top]]), c["tree"])
        cy = top - size_ * stretch * 0.45
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        wobble = 1 + 0.18 * rr.uniform(-1, 1, size=24)
        crown = np.stack([x + size_ * 0.55 * wobble * np.cos(angles), cy + size_ * stretch * 0.55 * wobble * np.sin(angles)], 1)
        _poly(mask, crown, c["tree"])
    return mask


# ---------------------------------------------------------------------------- palette and textures


def make_palette(seed: int) -> dict[str, np.ndarray]:
    """Per class a 2×3 float array of RGB colours in [0, 1], drawn from class-typical ranges."""
    rng = np.random.default_rng([int(seed), 2])
    tint = 1 + rng.uniform(-0.12, 0.12, size=3)  # the scene's light
    palette = {}
    for name in _NAMES:
        options = _HSV_RANGES[name]
        hue_r, sat_r, val_r = options[int(rng.integers(len(options)))]
        colours = []
        for slot in range(2):
            hue = (rng.uniform(*hue_r) + (rng.uniform(-12, 12) if slot else 0)) % 360 / 360
            sat = np.clip(rng.uniform(*sat_r) * (rng.uniform(0.6, 1.2) if slot else 1), 0, 1)
            val = np.clip(rng.uniform(*val_r) * (rng.uniform(0.55, 1.35) if slot else 1), 0, 1)
            colours.append(np.clip(np.array(colorsys.hsv_to_rgb(hue, sat, val)) * tint, 0, 1))
        palette[name] = np.stack(colours)
    return palette


def _noise(rng: np.random.Generator, size: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth value noise in about [0, 1]: a random grid of ``cells`` bicubically upsampled."""
    grid = rng.uniform(0, 1, size=(cells[0] + 3, cells[1] + 3)).astype(np.float32)
    h, w = size
    big = cv2.resize(grid, (w * (cells[1] + 3) // cells[1] + 1, h * (cells[0] + 3) // cells[0] + 1), interpolation=cv2.INTER_CUBIC)
    oy, ox = big.shape[0] - h, big.shape[1] - w
    return big[oy // 2 : oy // 2 + h, ox // 2 : ox // 2 + w]


def _fbm(rng: np.random.Generator, size: tuple[int, int], base: int, octaves: int = 3) -> np.ndarray:
    total, weight = np.zeros(size, np.float32), 0.0
    for octave in range(octaves):
        cells = base * 2**octave
        total += _noise(rng, size, (cells, cells)) * 0.5**octave
        weight += 0.5**octave
    return total / weight


def _textures(palette: dict[str, np.ndarray], layout: dict[str, Any], size: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    """Per class an H×W×3 float texture in [0, 1]."""
    rng = np.random.default_rng([int(seed), 3])
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    yn, xn = y / h, x / w
    horizon = layout["horizon"]

    def mix(name: str, t: np.ndarray) -> np.ndarray:
        c = palette[name]
        t = np.clip(t, 0, 1)[..., None]
        return c[0] * (1 - t) + c[1] * t

    out = {}
    clouds = np.clip((_fbm(rng, size, 3, 3) - rng.uniform(0.45, 0.65)) * 3, 0, 1)
    sky = mix("sky", np.clip(yn / max(horizon, 1e-3), 0, 1) ** 1.5)
    cloud_colour = np.clip(palette["sky"].mean(0) * 0.3 + 0.75, 0, 1)
    out["sky"] = sky * (1 - clouds[..., None] * 0.8) + cloud_colour * clouds[..., None] * 0.8
    ridged = 1 - np.abs(_fbm(rng, size, 4, 3) * 2 - 1)
    top = min(layout.get("mountain", [horizon]))
    snow = np.clip((np.clip(top + 0.035 - yn, 0, None) * 40) * (ridged > 0.6), 0, 1)[..., None]
    out["mountain"] = mix("mountain", ridged * 0.8 + (yn - top) * 0.8) * (1 - snow) + snow * 0.95
    for name in ("sea", "water"):
        phase = rng.uniform(0, 2 * np.pi)
        period = rng.uniform(0.015, 0.03)
        depth = (yn - horizon) / (1 - horizon + 1e-3)
        waves = 0.5 + 0.5 * np.sin((yn + 0.01 * np.sin(xn * 40 + phase)) / (period * (0.3 + depth)) + phase)
        out[name] = mix(name, 0.55 * waves ** 3 + 0.45 * _fbm(rng, size, 3, 2))
    blades = _noise(rng, size, (max(2, h // 24), max(4, w // 2)))
    out["grass"] = mix("grass", 0.6 * blades + 0.4 * _fbm(rng, size, 4, 2))
    leaves = _fbm(rng, size, 10, 2)
    out["tree"] = mix("tree", (leaves > 0.5).astype(np.float32) * 0.6 + leaves * 0.4)
    ripples = 0.5 + 0.5 * np.sin((xn * rng.uniform(-1, 1) + yn) * rng.uniform(50, 90) + 6 * _fbm(rng, size, 3, 1))
    out["sand"] = mix("sand", 0.4 * ripples + 0.6 * _fbm(rng, size, 16, 2))
    cracks = np.abs(_fbm(rng, size, 6, 2) - 0.5) < 0.04
    out["rock"] = mix("rock", _fbm(rng, size, 5, 3) * 0.8) * np.where(cracks, 0.6, 1.0)[..., None]
    cols = rng.uniform(0.012, 0.025)
    rows = rng.uniform(0.02, 0.04)
    windows = ((np.mod(xn, cols * 2) < cols) & (np.mod(yn, rows * 2) < rows)).astype(np.float32)
    out["building"] = mix("building", windows * 0.85 + 0.15 * _fbm(rng, size, 8, 1))
    asphalt = _fbm(rng, size, 24, 2)
    road = mix("road", asphalt * 0.5)
    if "road" in layout:
        vanish, centre, _ = layout["road"]
        y0 = horizon + layout["horizon_tilt"] * (vanish - 0.5)
        t = np.clip((yn - y0) / max(1.01 - y0, 1e-3), 0, 1)
        line_x = vanish + (centre - vanish) * t
        dashed = (np.abs(xn - line_x) < 0.004 + 0.01 * t) & (np.mod(t ** 0.5 * 12, 1) < 0.5)
        road = np.where(dashed[..., None], 0.9, road)
    out["road"] = road
    out["earth"] = mix("earth", _fbm(rng, size, 8, 3))
    return out


def render_scene(layout: dict[str, Any], palette: dict[str, np.ndarray], size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 H×W ADE20k index mask, uint8 H×W×3 RGB image) of ``layout`` painted with ``palette``."""
    mask = rasterise_layout(layout, size)
    textures = _textures(palette, layout, size, seed)
    image = np.zeros((*size, 3), np.float32)
    for name, ade_id in SCENE_CLASSES.items():
        where = mask == ade_id
        if where.any():
            image[where] = textures[name][where]
    # soft shading: darker towards the bottom corners, as a lens would
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1 - 0.15 * (((x / w - 0.5) ** 2 + (y / h - 0.5) ** 2) * 2)
    image = np.clip(image * vignette[..., None], 0, 1)
    return mask, (image * 255 + 0.5).astype(np.uint8)


def make_scene(seed: int, size: tuple[int, int] = (128, 128), palette_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (uint8 H×W ADE20k index mask, uint8 H×W×3 RGB image), a pure function of the seeds.

    ``palette_seed`` (default: ``seed``) picks the colours: the same layout with another
    palette looks different, another layout with the same palette has the same colours.
    """
    size = (int(size[0]), int(size[1]))
    palette = make_palette(seed if palette_seed is None else palette_seed)
    return render_scene(make_layout(seed), palette, size, seed)


def transformed_pair(
    seed: int,
    size: tuple[int, int] = (128, 128),
    rotation: float = 10.0,
    scale: float = 0.1,
    translation: float = 0.1,
    color: float = 0.3,
) -> dict[str, torch.Tensor]:
    """A scene and its exemplar under a known random affine warp + colour jitter (benchmarks).

    Returns ``label`` (151×H×W), ``image`` (3×H×W in [-1, 1]), ``exemplar``,
    ``exemplar_label`` and ``target`` (the scene in the exemplar's colours, what a perfect
    warp reproduces), ``mask`` and ``exemplar_mask`` (H×W long). Deterministic per ``seed``.
    """
    from .augment import color_jitter, random_affine, warp_affine

    mask, image = make_scene(seed, size)
    rng = np.random.default_rng([int(seed), 4])
    label = one_hot(mask, ADE20K_LABEL_CHANNELS)
    image_t = image_to_tensor(Image.fromarray(image))
    target = color_jitter(image_t, rng, color)
    theta = random_affine(rng, rotation, scale, translation)
    exemplar = warp_affine(target, theta).clamp(-1, 1)
    exemplar_label = warp_affine(label, theta, mode="nearest")
    return {
        "label": label,
        "image": image_t,
        "exemplar": exemplar,
        "exemplar_label": exemplar_label,
        "target": target,
        "mask": torch.from_numpy(mask.astype(np.int64)),
        "exemplar_mask": exemplar_label.argmax(0),
    }


def write_scenes_folder(root: str | Path, count: int, size: tuple[int, int] = (128, 128), seed: int = 0) -> Path:
    """Write ``count`` scenes as ``root/structures/NNNN.png`` (index masks) and ``root/images/NNNN.png``."""
    root = Path(root)
    (root / "structures").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        mask, image = make_scene(seed + i, size)
        Image.fromarray(mask).save(root / "structures" / f"{i:04d}.png")
        Image.fromarray(image).save(root / "images" / f"{i:04d}.png")
    return root


class ScenesDataset(PairedDataset):
    """``data.num_samples`` procedural landscapes (151-channel ADE20k one-hot labels), generated on the fly.

    Scene ``i`` uses seed ``data.seed * 100_003 + i``. Exemplars: the base class's
    self-supervised pair (affine warp + colour jitter of the target), or with probability
    ``data.scene_pair_probability`` another layout with the same palette (a cross-layout
    colour transfer; the warp loss then compares with the target itself).
    """

    def discover(self) -> list[str]:
        if self.label_channels != ADE20K_LABEL_CHANNELS:
            raise ValueError(f"scenes use ADE20k labels ({ADE20K_LABEL_CHANNELS} channels); set model.label_channels: 151")
        return [str(i) for i in range(self.config.num_samples)]

    def _seed(self, key: str) -> int:
        return int(self.config.seed) * 100_003 + int(key)

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        mask, image = make_scene(self._seed(key), size)
        return one_hot(mask, self.label_channels), image_to_tensor(Image.fromarray(image))

    def sample(self, key: str, rng: np.random.Generator) -> dict[str, Any]:
        probability = float(self.config.scene_pair_probability)
        if probability <= 0 or rng.random() >= probability:
            return super().sample(key, rng)
        label, image = self._load(key, rng)
        other = int(rng.integers(0, 2**31))
        size = tuple(label.shape[-2:])
        exemplar_mask, exemplar = make_scene(other, size, palette_seed=self._seed(key))
        return {
            "label": label,
            "image": image,
            "exemplar": image_to_tensor(Image.fromarray(exemplar)),
            "exemplar_label": one_hot(exemplar_mask, self.label_channels),
            "warp_target": image,
            "same_content": torch.tensor(1.0),
            "key": key,
        }
