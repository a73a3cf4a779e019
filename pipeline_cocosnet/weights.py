"""Where weights come from, in one place: the names the CLI, the app and the Space accept for a model.

:func:`resolve_weights` turns a name into what ``CoCosNetPipeline.from_pretrained`` loads:

* a pipeline folder (``model_index.json``) or a Hub repo id (offline: the Hub cache): unchanged;
* ``demo``: the embedded demo model (``from_pretrained`` knows the name);
* ``release:NAME`` (e.g. ``release:deepfashionhd``): the published release, downloaded and
  converted on first use, then cached (:func:`pipeline_cocosnet.release.fetch_release`);
* the research code's checkpoint folder (``*_net_Corr.pth`` …, no ``model_index.json``):
  converted once into the cache (:func:`pipeline_cocosnet.release.converted_checkpoint_folder`).

:func:`load_pipeline` resolves and loads. Failures are one line (``ReleaseError``, ``HubError``,
``FileNotFoundError``): the CLI exits 2 with it, the app shows it in the tab.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .hub import RELEASE_PREFIX, is_checkpoint_folder

__all__ = ["RELEASE_PREFIX", "resolve_weights", "load_pipeline"]


def resolve_weights(source: str | os.PathLike, *, progress: bool = True) -> str:
    """What ``CoCosNetPipeline.from_pretrained`` should load for ``source`` (see the module docstring)."""
    from . import release

    text = str(source)
    if text.startswith(RELEASE_PREFIX):
        return str(release.fetch_release(text[len(RELEASE_PREFIX) :], progress=progress))
    path = Path(text).expanduser()
    if is_checkpoint_folder(path):
        return str(release.converted_checkpoint_folder(path))
    return str(path) if path.exists() else text


def load_pipeline(source: str | os.PathLike, *, progress: bool = True, **kwargs: Any):
    """``CoCosNetPipeline.from_pretrained(resolve_weights(source), **kwargs)``."""
    from .pipeline import CoCosNetPipeline

    return CoCosNetPipeline.from_pretrained(resolve_weights(source, progress=progress), **kwargs)
