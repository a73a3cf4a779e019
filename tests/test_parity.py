"""Parity with the published implementation (fixtures computed by the research code).

The fixture model is the DeepFashionHD architecture at reduced width (ngf 8, nef 8,
20 label channels), run at 512×512 in float64 with the propagation order fixed to
horizontal-first. Its weights are float16-exact, so float64 outputs must agree to
rounding.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from pipeline_cocosnet.convert import convert_checkpoints
from pipeline_cocosnet.models.attention import dense_correspondence

from .conftest import PARITY

LEVELS = ["warp_64", "warp_128", "warp_256", "warp_512"]


@pytest.fixture(scope="module")
def reference():
    return load_file(str(PARITY / "parity_outputs.safetensors"))


def converted(dtype):
    return convert_checkpoints(PARITY / "official_Corr.safetensors", PARITY / "official_G.safetensors", dtype=dtype)


@pytest.fixture(scope="module")
def float64_outputs(published_float64_run):
    """float64 through the convert API and `pipe(...)` (tests/conftest.py): each level's warp and the image in [-1, 1]."""
    output, _ = published_float64_run
    return dict(zip(LEVELS, (warp.double() * 2 - 1 for warp in output.warps))) | {"fake_image": output.images.double() * 2 - 1}


@pytest.mark.slow
@pytest.mark.parametrize("name", LEVELS + ["fake_image"])
def test_float64_outputs_match_reference_within_1e_4(name, float64_outputs, reference):
    ours = float64_outputs[name]
    assert ours.shape == reference[name].shape
    assert (ours - reference[name].double()).abs().max().item() < 1e-4


def within(ours: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-3) -> float:
    """Fraction of values within ``tol``."""
    return ((ours.double() - theirs.double()).abs() <= tol).double().mean().item()


def test_float32_dense_level_matches_reference(parity_inputs, reference):
    correspondence, _ = converted(torch.float32)
    label, exemplar, exemplar_label = (x.float() for x in parity_inputs)
    with torch.no_grad():
        features = correspondence.encode(label, exemplar, exemplar_label)
        warp, _ = dense_correspondence(features.theta[0], features.phi[0], F.avg_pool2d(exemplar, 8), 0.01)
    assert within(warp, reference["warp_64"]) >= 0.999


def test_float32_translator_matches_reference_given_reference_warps(parity_inputs, reference):
    _, translator = converted(torch.float32)
    with torch.no_grad():
        image = translator(parity_inputs[0].float(), [reference[name] for name in LEVELS])
    assert within(image, reference["fake_image"]) >= 0.999
