"""A folder of photos (MetFaces, any face or painting folder) with edges computed on the fly.

Every image under ROOT (recursively) is a sample; its label is
:class:`~pipeline_cocosnet.processing.encoders.edges.EdgeEncoder` run on the photo at the
working size — the same edge definition (:func:`~pipeline_cocosnet.processing.encoders.edges.photo_to_edges`)
the inference pipeline applies to exemplars and structure photos. Self-supervised
exemplars get their edges re-extracted from the augmented photo, as at inference.
Keys are paths relative to ROOT.
"""

from __future__ import annotations

import numpy as np
import torch

from ...processing.encoders.edges import EdgeEncoder
from .base import IMAGE_SUFFIXES, PairedDataset, SampleError, image_to_tensor, read_rgb

__all__ = ["EdgeFolderDataset"]


class EdgeFolderDataset(PairedDataset):
    """Photos → (edge label replicated into ``label_channels`` channels, photo)."""

    def discover(self) -> list[str]:
        if self.root is None or not self.root.is_dir():
            raise SampleError(f"edge dataset root folder not found: {self.root}")
        self.encoder = EdgeEncoder(channels=self.label_channels, from_photos=True)
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
        )

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        photo = read_rgb(self.root / key)
        return self.encoder.encode(photo, size), image_to_tensor(photo, size)

    def exemplar_structure(self, exemplar: torch.Tensor, warped_label: torch.Tensor) -> torch.Tensor:
        photo = ((exemplar.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        return self.encoder.encode(np.ascontiguousarray(photo), tuple(exemplar.shape[-2:]))
