"""Shared test helpers: fixture paths and tiny randomly initialised models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"


def tiny_models(label_channels: int = 3, seed: int = 0, dtype=torch.float32):
    """A small random correspondence + translator pair (nef 8, ngf 8)."""
    torch.manual_seed(seed)
    correspondence = CoCosNetCorrespondence(label_channels=label_channels, nef=8).eval()
    translator = CoCosNetTranslator(label_channels=label_channels, ngf=8).eval()
    torch.nn.Module.to(correspondence, dtype)
    torch.nn.Module.to(translator, dtype)
    return correspondence, translator


def random_inputs(batch: int, label_channels: int, height: int, width: int, seed: int = 0, dtype=torch.float32):
    """(label, exemplar, exemplar_label) with smooth random structure, labels in [0,1], exemplar in [-1,1]."""
    g = torch.Generator().manual_seed(seed)

    def smooth(channels: int) -> torch.Tensor:
        coarse = torch.rand(batch, channels, height // 8, width // 8, generator=g, dtype=dtype)
        return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)

    return smooth(label_channels), smooth(3) * 2 - 1, smooth(label_channels)


@pytest.fixture(scope="session")
def parity_inputs():
    """The published fixture's inputs as (label, exemplar, exemplar_label) float64 tensors."""
    with np.load(PARITY / "parity_inputs.npz") as data:
        label = torch.from_numpy(data["label"]).double() / 255
        label_ref = torch.from_numpy(data["label_ref"]).double() / 255
        exemplar = torch.from_numpy(data["exemplar"]).double() / 255 * 2 - 1
    return label, exemplar, label_ref
