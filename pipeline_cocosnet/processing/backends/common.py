"""Shared plumbing of the photo backends: optional imports, Hub loading with clear errors, a result cache.

Backends (pose estimators, segmenters) import their packages only when first used, and
load their models only when first called. A missing package raises
:class:`BackendMissingError` naming the extra to install; a model that cannot be loaded
(offline, typo, gated) raises :class:`ModelUnavailableError` naming the model id and how
to provide it locally.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
from PIL import Image

__all__ = [
    "BackendMissingError",
    "ModelUnavailableError",
    "extra_hint",
    "require",
    "load_pretrained",
    "photo_key",
    "PhotoCache",
]


class BackendMissingError(ImportError):
    """A backend's package is not installed; the message names the extra to install."""


class ModelUnavailableError(OSError):
    """A backend's model could not be loaded (offline, wrong id or path); the message says how to provide it."""


def extra_hint(extra: str) -> str:
    return f'pip install "pipeline_cocosnet[{extra}]"'


def require(module: str, extra: str, what: str) -> Any:
    """Import ``module`` or raise :class:`BackendMissingError` naming ``pip install "pipeline_cocosnet[extra]"``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BackendMissingError(
            f"{what} needs the {module.split('.')[0]} package, which is not installed ({error}): {extra_hint(extra)}"
        ) from None


def _offline() -> bool:
    try:
        from huggingface_hub.constants import is_offline_mode
    except ImportError:
        return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return bool(is_offline_mode())


@functools.lru_cache(maxsize=8)
def load_pretrained(loader: Callable[..., Any], model_id: str, what: str) -> Any:
    """``loader(model_id)`` (e.g. ``AutoModel.from_pretrained``), cached per process, with a clear error.

    ``model_id`` is a Hub id (downloaded on first use into the Hugging Face cache) or a
    local folder. Any failure becomes :class:`ModelUnavailableError` naming the id, whether
    the Hub was offline, and how to provide the model locally.
    """
    try:
        return loader(model_id)
    except (OSError, ValueError) as error:  # transformers turns hub/network failures into OSError
        local = os.path.isdir(model_id)
        if local:
            how = f"the local folder {model_id!r} does not hold a loadable model"
        else:
            how = (
                f"{'HF_HUB_OFFLINE is set and ' if _offline() else ''}the model is not in the Hugging Face cache "
                f"and could not be downloaded. Download it once with `hf download {model_id}` (then it loads "
                f"offline), or save it to a folder and pass that folder's path instead of the id"
            )
        raise ModelUnavailableError(f"{what}: cannot load model {model_id!r}: {how} ({type(error).__name__}: {error})") from None


def photo_key(photo: Image.Image) -> tuple:
    """A content key for a PIL image (size, mode and a BLAKE2 digest of its pixels)."""
    return photo.size, photo.mode, hashlib.blake2b(photo.tobytes(), digest_size=16).digest()


class PhotoCache:
    """A small LRU cache of per-photo results, so rendering then encoding one photo runs the model once.

    Safe to share between threads (the app's concurrent requests): the table is locked while it is
    read or changed, not while ``compute`` runs, so two requests for different photos run side by side
    (two for the same new photo may both compute it; the results are equal).
    """

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, photo: Image.Image, compute: Callable[[Image.Image], Any]) -> Any:
        key = photo_key(photo)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute(photo)
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def as_rgb_photo(photo: Any, what: str) -> Image.Image:
    """A PIL RGB image from a PIL image or a uint8 H×W×3 array."""
    if isinstance(photo, np.ndarray) and photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] in (3, 4):
        return Image.fromarray(photo[..., :3])
    if isinstance(photo, Image.Image):
        return photo.convert("RGB")
    raise TypeError(f"{what}: expected a PIL image or a uint8 H×W×3 array, got {type(photo).__name__}")
