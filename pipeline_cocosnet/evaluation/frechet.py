"""FID: the Fréchet distance between Gaussians fitted to Inception-v3 pool features.

The features come from torch-fidelity's ``FeatureExtractorInceptionV3`` (the TensorFlow
Inception graph of 2015-12-05 ported to PyTorch, as pytorch-fid and clean-fid use; 2048-d
pool3 features; it resizes every image to 299×299 with TensorFlow 1.x's bilinear rule) from a
local weights file (``pt_inception-2015-12-05-6726825d.pth`` or torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth``): nothing is downloaded. Images are read as
8-bit RGB from PNG (or whatever the folder holds: JPEG changes FID, see docs/evaluation.md).

The distance, for means μ and covariances Σ of the two feature sets (float64)::

    d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½

with the matrix square roots taken through symmetric eigendecompositions (exact for the
positive semi-definite covariances; no complex parts to discard).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = ["INCEPTION_WEIGHTS_HINT", "FIDUnavailable", "frechet_distance", "gaussian", "inception_features"]

INCEPTION_WEIGHTS_HINT = (
    "pass --inception-weights FILE: the standard FID Inception weights pt_inception-2015-12-05-6726825d.pth "
    "(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth) "
    "or torch-fidelity's weights-inception-2015-12-05-6726825d.pth"
)


class FIDUnavailable(ValueError):
    """FID cannot be computed here (no weights file, or torch-fidelity missing); the message says what to do."""


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D) and covariance (D×D, unbiased) of N×D features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2:
        raise ValueError(f"a Gaussian needs at least 2 feature vectors, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (see the module docstring)."""
    mu1, mu2 = (torch.as_tensor(np.asarray(m), dtype=torch.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(np.atleast_2d(s), dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"shapes do not match: μ {tuple(mu1.shape)}, {tuple(mu2.shape)}; Σ {tuple(sigma1.shape)}, {tuple(sigma2.shape)}")
    root = _sqrt_psd(sigma1)
    cross = torch.linalg.eigvalsh(root @ sigma2 @ root).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * cross
    return float(value.clamp_min(0))


def _extractor(weights: str | os.PathLike | None, device: str):
    if not weights:
        raise FIDUnavailable(f"FID needs the Inception-v3 weights file: {INCEPTION_WEIGHTS_HINT}")
    if not Path(weights).is_file():
        raise FIDUnavailable(f"no such Inception weights file: {weights} ({INCEPTION_WEIGHTS_HINT})")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as error:
        raise FIDUnavailable(
            f"FID's Inception network comes from torch-fidelity, which is not importable here ({error}): "
            f"pip install \"pipeline_cocosnet[fid]\" (torch-fidelity, with torchvision built for your torch)"
        ) from None
    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)).eval().to(device)


def inception_features(batches: Iterable[np.ndarray], weights: str | os.PathLike | None, device: str = "cpu") -> np.ndarray:
    """N×2048 pool features of uint8 B×H×W×3 batches (raises :class:`FIDUnavailable` before reading any image)."""
    extractor = _extractor(weights, device)
    features = []
    with torch.no_grad():
        for batch in batches:
            images = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).to(device)  # uint8, as it expects
            (pool,) = extractor(images)
            features.append(pool.double().cpu().numpy())
    return np.concatenate(features)
