"""The dataset base: (structure, image) readers plus the choice of exemplar.

Every reader yields dicts of:

* ``label`` Cl×H×W in [0, 1] and ``image`` 3×H×W in [-1, 1]: the target;
* ``exemplar`` 3×H×W and ``exemplar_label`` Cl×H×W: the exemplar and its structure;
* ``warp_target`` 3×H×W: the target as it looks in the exemplar's colours (the target
  itself, or its colour-jittered copy for self-supervised exemplars);
* ``same_content`` (0-dim float): 1 when the exemplar shows the target's content
  (warp and VGG feature-matching losses apply), 0 for retrieved exemplars;
* ``key``: the sample's name (its path relative to the root, or its index).

Exemplar choice per sample: a retrieval-list exemplar with probability
``retrieval_probability`` (when the list has the sample), else a same-content partner
from the pair list, else a self-supervised exemplar: the target (colour-jittered) under
a random affine warp, with its structure warped alike (or re-extracted, for edges).

Malformed samples raise :class:`SampleError` naming the file; ``on_error="skip"`` logs
it and serves the next good sample instead, ``"raise"`` stops.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ...processing.image_processor import CoCosNetImageProcessor
from ...processing.images import ImageError, open_image
from ..config import DataConfig
from .augment import color_jitter, random_affine, random_crop_flip, warp_affine

__all__ = ["SampleError", "PairedDataset", "read_pair_list", "read_rgb", "image_to_tensor", "IMAGE_SUFFIXES"]

logger = logging.getLogger("pipeline_cocosnet.training")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class SampleError(ValueError):
    """A malformed training sample; the message names the offending file."""


def read_rgb(path: Path) -> Image.Image:
    """An RGB PIL image; unreadable or missing files raise :class:`SampleError` naming them."""
    try:
        return open_image(path, "training image").convert("RGB")
    except ImageError as error:
        raise SampleError(str(error)) from None


#: the package's one image conversion (processing/image_processor.py), as the pipeline uses it
IMAGE_PROCESSOR = CoCosNetImageProcessor()


def image_to_tensor(photo: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL RGB → 3×H×W float32 in [-1, 1] (bicubic-resized to ``size`` = (H, W) when given), as the pipeline does."""
    return IMAGE_PROCESSOR.preprocess(photo, size, what="training image")


def read_pair_list(path: Optional[str]) -> dict[str, list[str]]:
    """``target,other[,other…]`` per line → {target: [others]} (blank lines and ``#`` comments skipped)."""
    if not path:
        return {}
    file = Path(path)
    if not file.is_file():
        raise SampleError(f"pair list not found: {file}")
    pairs: dict[str, list[str]] = {}
    for number, line in enumerate(file.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        items = [_normalise_key(item) for item in line.split(",") if item.strip()]
        if len(items) < 2:
            raise SampleError(f"{file}:{number}: expected 'target,exemplar[,exemplar…]', got {line!r}")
        pairs.setdefault(items[0], []).extend(items[1:])
    return pairs


def _normalise_key(key: str) -> str:
    key = key.strip().replace("\\", "/")
    return key[2:] if key.startswith("./") else key


class PairedDataset(Dataset):
    """Base class of the readers. Subclasses implement :meth:`discover` and :meth:`read`.

    Args:
        config: the ``data`` section (size, crop, exemplar choice, error policy, …).
        label_channels: Cl of the model being trained.
    """

    def __init__(self, config: DataConfig, label_channels: int):
        if config.on_error not in ("skip", "raise"):
            raise ValueError(f"data.on_error must be 'skip' or 'raise', got {config.on_error!r}")
        self.config = config
        self.size = (int(config.size[0]), int(config.size[1]))
        self.label_channels = label_channels
        self.root = Path(config.root) if config.root else None
        self.epoch = 0
        #: {key or path: reason} of every sample reported as malformed so far (in this process)
        self.problems: dict[str, str] = {}
        self.keys: list[str] = self.discover()
        self.pairs = self._checked_partners(read_pair_list(config.pairs_file), "pair list")
        self.retrieval = self._checked_partners(read_pair_list(config.retrieval_file), "retrieval list")
        if not self.keys:
            raise SampleError(f"no usable training samples found for data.kind={config.kind!r} under {self.root}")

    # ------------------------------------------------------------------ for subclasses

    def discover(self) -> list[str]:
        """The sample keys (checking cheaply, e.g. that files exist; use :meth:`report`)."""
        raise NotImplementedError

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(label Cl×H×W, image 3×H×W) of ``key`` at ``size``; :class:`SampleError` if malformed."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        """Whether a partner named in a pair/retrieval list can be read (default: it is a sample)."""
        return key in self._key_set

    def exemplar_structure(self, exemplar: torch.Tensor, warped_label: torch.Tensor) -> torch.Tensor:
        """The structure of a self-supervised exemplar (default: the target's label, warped alike)."""
        return warped_label

    # ------------------------------------------------------------------ reporting

    def report(self, what: str, reason: str) -> None:
        """A malformed sample: raise (``on_error="raise"``) or log it and carry on."""
        message = f"{what}: {reason}"
        if self.config.on_error == "raise":
            raise SampleError(message)
        if what not in self.problems:
            logger.warning("skipping malformed training sample %s", message)
        self.problems[what] = reason

    def _checked_partners(self, pairs: dict[str, list[str]], what: str) -> dict[str, list[str]]:
        self._key_set = set(self.keys)
        checked = {}
        for key, partners in pairs.items():
            good = []
            for partner in partners:
                if self.exists(partner):
                    good.append(partner)
                else:
                    self.report(partner, f"named as exemplar of {key} in the {what} but not found")
            if good:
                checked[key] = good
        return checked

    # ------------------------------------------------------------------ sampling

    def __len__(self) -> int:
        return len(self.keys)

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations per epoch (samples stay deterministic per (seed, epoch, index))."""
        self.epoch = epoch

    def _load(self, key: str, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        load = self.config.load_size
        if load is None:
            label, image = self.read(key, self.size)
        else:
            short = min(self.size)
            if load < short:
                raise ValueError(f"data.load_size {load} is smaller than data.size {self.size}")
            label, image = self.read(key, (round(self.size[0] * load / short), round(self.size[1] * load / short)))
        if label.shape[0] != self.label_channels:
            raise SampleError(f"{key}: structure has {label.shape[0]} channels, the model takes {self.label_channels}")
        return random_crop_flip(label, image, self.size, rng, self.config.flip)

    def sample(self, key: str, rng: np.random.Generator) -> dict[str, Any]:
        """One training sample of ``key`` (see the module docstring); may raise :class:`SampleError`."""
        label, image = self._load(key, rng)
        config = self.config
        retrieval = self.retrieval.get(key)
        partners = self.pairs.get(key)
        if retrieval and rng.random() < config.retrieval_probability:
            exemplar_label, exemplar = self._load(retrieval[int(rng.integers(len(retrieval)))], rng)
            target, same = image, 0.0
        elif partners:
            exemplar_label, exemplar = self._load(partners[int(rng.integers(len(partners)))], rng)
            target, same = image, 1.0
        else:
            target = color_jitter(image, rng, config.augment_color)
            theta = random_affine(rng, config.augment_rotation, config.augment_scale, config.augment_translation)
            exemplar = warp_affine(target, theta).clamp(-1, 1)
            exemplar_label = self.exemplar_structure(exemplar, warp_affine(label, theta, mode="nearest"))
            same = 1.0
        return {
            "label": label,
            "image": image,
            "exemplar": exemplar,
            "exemplar_label": exemplar_label,
            "warp_target": target,
            "same_content": torch.tensor(same),
            "key": key,
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed = [int(self.config.seed), int(self.epoch), int(index)]
        for attempt in range(len(self.keys)):
            key = self.keys[(index + attempt) % len(self.keys)]
            if key in self.problems:
                continue
            try:
                return self.sample(key, np.random.default_rng(seed))
            except SampleError as error:
                self.report(key, str(error))
        raise SampleError(f"every training sample is malformed ({len(self.problems)} reported)")
