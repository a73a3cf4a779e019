"""What :class:`~pipeline_cocosnet.CoCosNetPipeline` returns (kept apart from the pipeline, as in diffusers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

__all__ = ["CoCosNetPipelineOutput", "ExemplarSuggestion"]


@dataclass
class CoCosNetPipelineOutput(BaseOutput):
    """Output of :class:`~pipeline_cocosnet.CoCosNetPipeline`.

    Attributes:
        images: the translated images: a list of PIL images, a B×H×W×3 array in [0, 1]
            or a B×3×H×W tensor in [0, 1], as ``output_type`` asked.
        warps: with ``return_warps=True``, the warped exemplar per level, coarsest
            first (H/8 … H), each in the same output type; otherwise ``None``.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    warps: list[Any] | None = None


@dataclass(frozen=True)
class ExemplarSuggestion:
    """One ranked gallery exemplar from :meth:`~pipeline_cocosnet.CoCosNetPipeline.suggest_exemplars`.

    Attributes:
        index: position of the exemplar in the gallery given.
        score: mean over structure positions of the best dense-level match score, in [-1, 1]
            (higher: every part of the structure finds a similar part in the exemplar).
    """

    index: int
    score: float
