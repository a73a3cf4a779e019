"""``cocosnet evaluate``: score a folder of generated images against real ones (SWD, FID, the VGG19 scores).

Images are the folder's ``.png``/``.jpg``/``.jpeg``/``.webp``/``.bmp`` files (not sub-folders),
in name order, read upright (EXIF) as 8-bit RGB. Every image is compared at the size of the
first generated image: images of another size are resized to it (PIL bicubic). Metrics:

* ``swd``: :mod:`.swd` (×10³, mean over the pyramid levels; seeded, so the same folders give the
  same number);
* ``fid``: :mod:`.frechet` (needs ``inception_weights`` and torch-fidelity);
* ``semantic``: :func:`.vgg_scores.semantic_consistency` of each generated image with the real
  image of the same name (needs ``vgg_weights``);
* ``style``: :func:`.vgg_scores.style_relevance` of each generated image with its exemplar, found
  through the PAIRS.csv the images were made from (needs ``vgg_weights`` and ``pairs``).

LPIPS is not offered: the maintained package (``lpips``) fetches its AlexNet/VGG backbones from
torchvision's download server, so it cannot run offline from files the user points at.

What the real folder yields (SWD descriptors, Inception features) is cached on disk in
huggingface_hub's assets cache, keyed by the folder's file names, sizes and modification
times and by the settings that shape it, so scoring several models against one test set
reads it once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from ..processing.images import open_image
from .frechet import frechet_distance, gaussian, inception_features
from .swd import sliced_wasserstein, swd_descriptors

__all__ = ["METRICS", "IMAGE_SUFFIXES", "list_images", "evaluate", "format_result"]

METRICS = ("swd", "fid", "semantic", "style")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, by name (``ValueError`` when there is no such folder or none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no such folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise ValueError(f"no images (.png, .jpg, .jpeg, .webp, .bmp) in {folder}")
    return files


def _read(path: Path, size: tuple[int, int]) -> np.ndarray:
    """One image as H×W×3 uint8 at ``size`` (W, H)."""
    image = open_image(path).convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.BICUBIC)
    return np.asarray(image)


def _batches(paths: Sequence[Path], size: tuple[int, int], batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(paths), batch_size):
        yield np.stack([_read(p, size) for p in paths[start : start + batch_size]])


def _cache_file(kind: str, paths: Sequence[Path], settings: dict[str, Any]) -> Path:
    """Where what ``paths`` yields for ``kind`` under ``settings`` is kept (keyed by the files' names, sizes, mtimes)."""
    from huggingface_hub import cached_assets_path, constants

    identity = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    key = hashlib.sha1(json.dumps([kind, str(paths[0].parent.resolve()), identity, settings], sort_keys=True).encode()).hexdigest()[:20]
    folder = cached_assets_path(library_name="pipeline_cocosnet", namespace="evaluation", subfolder=kind, assets_dir=constants.HF_ASSETS_CACHE)
    return folder / f"{key}.npz"


def _cached(kind: str, paths: Sequence[Path], settings: dict[str, Any], compute: Callable[[], list[np.ndarray]], use_cache: bool) -> list[np.ndarray]:
    if not use_cache:
        return compute()
    file = _cache_file(kind, paths, settings)
    if file.is_file():
        with np.load(file) as stored:
            return [stored[f"a{k}"] for k in range(len(stored.files))]
    arrays = compute()
    temporary = file.with_name(f".{file.stem}.{os.getpid()}.tmp.npz")
    np.savez(temporary, **{f"a{k}": a for k, a in enumerate(arrays)})
    os.replace(temporary, file)
    return arrays


def _swd(generated: list[Path], real: list[Path], size, seed: int, batch_size: int, use_cache: bool) -> dict[str, Any]:
    count = min(len(generated), len(real))
    rng = np.random.default_rng(seed)
    pick = lambda paths: paths if len(paths) == count else [paths[i] for i in sorted(rng.choice(len(paths), count, replace=False))]  # noqa: E731
    generated, real = pick(generated), pick(real)
    settings = {"size": list(size), "seed": seed}
    ours = swd_descriptors(_batches(generated, size, batch_size), seed)
    theirs = _cached("swd", real, settings, lambda: swd_descriptors(_batches(real, size, batch_size), seed), use_cache)
    levels = [1e3 * sliced_wasserstein(a, b, seed) for a, b in zip(ours, theirs)]
    return {"value": float(np.mean(levels)), "levels": levels, "images": count}


def _fid(generated: list[Path], real: list[Path], size, weights, device: str, batch_size: int, use_cache: bool) -> dict[str, Any]:
    ours = inception_features(_batches(generated, size, batch_size), weights, device)
    weights_id = [Path(weights).name, Path(weights).stat().st_size]
    settings = {"size": list(size), "weights": weights_id}
    (theirs,) = _cached("fid", real, settings, lambda: [inception_features(_batches(real, size, batch_size), weights, device)], use_cache)
    return {"value": frechet_distance(*gaussian(ours), *gaussian(theirs)), "images": [len(ours), len(theirs)]}


def _paired_score(score, vgg, generated: list[Path], partners: list[Path], size, device: str, batch_size: int) -> dict[str, Any]:
    def tensors(batch: np.ndarray) -> torch.Tensor:  # uint8 B×H×W×3 → B×3×H×W in [-1, 1]
        return torch.from_numpy(batch).permute(0, 3, 1, 2).to(device).float() / 127.5 - 1

    pairs = zip(_batches(generated, size, batch_size), _batches(partners, size, batch_size))
    values = torch.cat([score(vgg, tensors(ours), tensors(theirs)).cpu() for ours, theirs in pairs])
    return {"value": float(values.mean()), "images": len(values)}


def evaluate(
    generated_dir: str | os.PathLike,
    real_dir: str | os.PathLike | None,
    metrics: Sequence[str] = ("swd",),
    *,
    pairs: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    vgg_weights: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | None = None,
    batch_size: int = 16,
    use_cache: bool = True,
) -> dict[str, dict[str, Any]]:
    """Score ``generated_dir``; returns ``{metric: {"value": …, …details}}`` in ``metrics`` order.

    Everything a metric needs is checked before any image is read (``ValueError``, one line).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {', '.join(unknown)} (known: {', '.join(METRICS)})")
    if any(m in metrics for m in ("swd", "fid", "semantic")) and real_dir is None:
        raise ValueError("--real DIR is needed for swd, fid and semantic")
    if any(m in metrics for m in ("semantic", "style")) and not vgg_weights:
        from ..training.vgg import VGG_DOWNLOAD_HINT

        raise ValueError(f"semantic and style need VGG19 weights: pass --vgg-weights FILE ({VGG_DOWNLOAD_HINT.split(' and set ')[0]})")
    if "style" in metrics and pairs is None:
        raise ValueError("style needs --pairs PAIRS.csv (the file the images were translated from: it names each exemplar)")
    if "fid" in metrics:
        from .frechet import _extractor

        _extractor(inception_weights, "cpu")  # no weights or no torch-fidelity: said now, before any image is read
    from ..precision import resolve_device

    device = resolve_device(device)
    generated = list_images(generated_dir)
    real = list_images(real_dir) if real_dir is not None else []
    with Image.open(generated[0]) as first:
        size = first.size
    results: dict[str, dict[str, Any]] = {}
    vgg = None
    for metric in metrics:
        if metric == "swd":
            results[metric] = _swd(generated, real, size, seed, batch_size, use_cache)
        elif metric == "fid":
            results[metric] = _fid(generated, real, size, inception_weights, device, batch_size, use_cache)
        else:
            if vgg is None:
                from ..training.vgg import load_vgg19

                vgg = load_vgg19(vgg_weights).to(device).eval()
            from .vgg_scores import semantic_consistency, style_relevance

            if metric == "semantic":
                by_stem = {p.stem: p for p in real}
                matched = [(g, by_stem[g.stem]) for g in generated if g.stem in by_stem]
                if not matched:
                    raise ValueError(f"semantic: no real image in {real_dir} has the name of a generated one")
                result = _paired_score(semantic_consistency, vgg, *map(list, zip(*matched)), size, device, batch_size)
            else:
                from .pairs import read_pairs

                exemplars = {p.name: p.exemplar for p in read_pairs(pairs)[0]}
                matched = [(g, exemplars[g.stem]) for g in generated if g.stem in exemplars]
                if not matched:
                    raise ValueError(f"style: no generated image is named after a pair of {pairs}")
                result = _paired_score(style_relevance, vgg, *map(list, zip(*matched)), size, device, batch_size)
            results[metric] = {**result, "unmatched": len(generated) - len(matched)}
    return results


def format_result(metric: str, result: dict[str, Any]) -> str:
    """One line for ``metric``'s result."""
    if metric == "swd":
        levels = ", ".join(f"{v:.2f}" for v in result["levels"])
        return f"swd       {result['value']:.4f}  (×10³, mean of the pyramid levels {levels}, finest first; {result['images']} vs {result['images']} images)"
    if metric == "fid":
        return f"fid       {result['value']:.4f}  ({result['images'][0]} generated vs {result['images'][1]} real images)"
    unmatched = f"; {result['unmatched']} generated images without a partner skipped" if result.get("unmatched") else ""
    return f"{metric:<9} {result['value']:.4f}  (mean cosine similarity over {result['images']} images{unmatched})"
