"""The CoCosNet papers' VGG19 scores: semantic consistency and style relevance (higher is better, at most 1).

Both read ImageNet VGG19 features (the file ``cocosnet train`` reads, :func:`~pipeline_cocosnet.training.vgg.load_vgg19`):

* **semantic consistency** of a generated image with its ground truth: the cosine similarity of
  the flattened ``relu3_2``, ``relu4_2`` and ``relu5_2`` activations (C·h·w vectors), averaged
  over the three layers, then over the images;
* **style relevance** of a generated image to its exemplar: per layer ``relu1_2`` and
  ``relu2_2``, the cosine similarity of the channel-wise means and that of the channel-wise
  standard deviations (C vectors), averaged over the four, then over the images.

Images are compared at the generated image's size (the other one resized, bicubic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SEMANTIC_LAYERS", "STYLE_LAYERS", "semantic_consistency", "style_relevance"]

SEMANTIC_LAYERS = ("relu3_2", "relu4_2", "relu5_2")
STYLE_LAYERS = ("relu1_2", "relu2_2")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per item (first dimension) cosine similarity of the flattened rest."""
    return F.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1)


@torch.no_grad()
def semantic_consistency(vgg, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per image (B), of B×3×H×W images in [-1, 1] and their ground truths (same shape)."""
    pairs = zip(vgg(generated, SEMANTIC_LAYERS), vgg(real, SEMANTIC_LAYERS))
    return torch.stack([_cosine(g, r) for g, r in pairs]).mean(0)


@torch.no_grad()
def style_relevance(vgg, generated: torch.Tensor, exemplar: torch.Tensor) -> torch.Tensor:
    """Per image (B), of B×3×H×W images in [-1, 1] and their exemplars (same shape)."""
    scores = []
    for g, e in zip(vgg(generated, STYLE_LAYERS), vgg(exemplar, STYLE_LAYERS)):
        g, e = g.flatten(2).double(), e.flatten(2).double()
        scores += [_cosine(g.mean(2), e.mean(2)), _cosine(g.std(2), e.std(2))]
    return torch.stack(scores).mean(0)
