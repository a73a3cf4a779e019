"""PAIRS.csv makers for the datasets the CoCosNet papers score: DeepFashionHD, ADE20k, and the demo's scenes.

* :func:`deepfashionhd_pairs`: a test list (one image key ``img/…jpg`` per line) and a retrieval
  list (``target,exemplar[,exemplar…]`` per line, the research code's ``deepfashion_ref*.txt``):
  each target's pose is translated with its first listed exemplar; the ground truth is the
  target photo.
* :func:`ade20k_pairs`: every mask of a SceneParsing split (``annotations/validation``) with, as
  exemplar, the photo of the gallery split (default: the same split, never the image itself)
  whose mask has the most similar class histogram: the cosine similarity of the two 151-bin
  histograms of pixel class ids (class 0 "other" left out), ties to the first by name. This is
  a fixed, model-free rule, so every model is scored on the same pairs.
* :func:`scene_pairs`: held-out procedural scenes for the embedded demo model: pair ``k`` is the
  layout of scene ``seed + 2k`` with, as exemplar, scene ``seed + 2k + 1`` painted in the first
  scene's palette (the appearance to carry over); the ground truth is the first scene.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .pairs import write_pairs

__all__ = ["deepfashionhd_pairs", "ade20k_pairs", "scene_pairs", "HELD_OUT_SCENE_SEED"]

#: scene seeds from here to 100 000 are never drawn by the demo's training: its three phases (data.seed 0, 1, 2 in
#: configs/train_demo_scenes.yaml) drew seeds data.seed·100 003 + i for i < 4096
HELD_OUT_SCENE_SEED = 50_000


def deepfashionhd_pairs(root: str | os.PathLike, test_list: str | os.PathLike, ref_list: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Write ``output`` (PAIRS.csv) for DeepFashionHD's test keys; keys without an exemplar or files are left out."""
    from ..training.data.base import _normalise_key, read_pair_list
    from ..training.data.deepfashion import pose_files

    root = Path(root)
    refs = read_pair_list(str(ref_list))
    rows = []
    for line in Path(test_list).read_text().splitlines():
        key = _normalise_key(line.split(",")[0]) if line.strip() else ""
        if not key or key not in refs:
            continue
        exemplar = refs[key][0]
        structure, exemplar_structure = pose_files(root, key)[0], pose_files(root, exemplar)[0]
        files = [root / key, root / exemplar, structure, exemplar_structure]
        if all(f.is_file() for f in files):
            name = Path(key).with_suffix("").as_posix().removeprefix("img/").replace("/", "_")
            rows.append({"name": name, "structure": str(structure), "exemplar": str(root / exemplar), "exemplar_structure": str(exemplar_structure)})
    if not rows:
        raise ValueError(f"no test key of {test_list} has an exemplar in {ref_list} and all its files under {root}")
    return write_pairs(output, rows)


def _histogram(mask_path: Path) -> np.ndarray:
    counts = np.bincount(np.asarray(Image.open(mask_path)).ravel().astype(np.int64), minlength=151)[1:151].astype(np.float64)
    return counts / max(np.linalg.norm(counts), 1e-12)


def ade20k_pairs(root: str | os.PathLike, output: str | os.PathLike, split: str = "validation", gallery_split: str | None = None) -> Path:
    """Write ``output`` (PAIRS.csv): each ``split`` mask with its most similar ``gallery_split`` photo (see the module)."""
    root = Path(root)

    def items(which: str) -> list[tuple[str, Path, Path]]:
        masks = sorted((root / "annotations" / which).glob("*.png"))
        found = [(m.stem, m, root / "images" / which / f"{m.stem}.jpg") for m in masks]
        return [item for item in found if item[2].is_file()]

    targets = items(split)
    gallery = items(gallery_split or split)
    if not targets or not gallery:
        raise ValueError(f"no mask/photo pairs under {root}/annotations/{split} and images/{split} (or the gallery split)")
    gallery_histograms = np.stack([_histogram(mask) for _, mask, _ in gallery])
    rows = []
    for stem, mask, _ in targets:
        similarity = gallery_histograms @ _histogram(mask)
        for index in np.argsort(-similarity, kind="stable"):
            if gallery[index][0] != stem:
                break
        _, exemplar_mask, exemplar = gallery[index]
        rows.append({"name": stem, "structure": str(mask), "exemplar": str(exemplar), "exemplar_structure": str(exemplar_mask)})
    return write_pairs(output, rows)


def scene_pairs(folder: str | os.PathLike, count: int = 64, size: int = 128, seed: int = HELD_OUT_SCENE_SEED) -> Path:
    """Write ``count`` held-out scene pairs into ``folder`` (``inputs/``, ``real/`` ground truths, ``pairs.csv``)."""
    from ..training.data.scenes import make_scene

    if not 0 < count <= 25_000 or seed < HELD_OUT_SCENE_SEED:
        raise ValueError(f"scene pairs: count must be 1…25000 and seeds ≥ {HELD_OUT_SCENE_SEED} (held out from the demo's training)")
    folder = Path(folder)
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    (folder / "real").mkdir(exist_ok=True)
    rows = []
    for k in range(count):
        target, other = seed + 2 * k, seed + 2 * k + 1
        mask, image = make_scene(target, (size, size))
        exemplar_mask, exemplar = make_scene(other, (size, size), palette_seed=target)
        name = f"scene{k:04d}"
        files = {"structure": folder / "inputs" / f"{name}_mask.png", "exemplar": folder / "inputs" / f"{name}_exemplar.png",
                 "exemplar_structure": folder / "inputs" / f"{name}_exemplar_mask.png"}  # fmt: skip
        Image.fromarray(mask).save(files["structure"])
        Image.fromarray(exemplar).save(files["exemplar"])
        Image.fromarray(exemplar_mask).save(files["exemplar_structure"])
        Image.fromarray(image).save(folder / "real" / f"{name}.png")
        rows.append({"name": name, **{key: str(path) for key, path in files.items()}})
    return write_pairs(folder / "pairs.csv", rows)
