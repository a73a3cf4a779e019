"""Shared test helpers: fixture paths and tiny randomly initialised models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"


def rounding_bound(dtype: torch.dtype, terms: int, magnitude: float = 1.0, ulps: float = 4.0) -> float:
    """A bound on the rounding difference between two orderings of one computation.

    Two ways of summing ``terms`` products, each at most ``magnitude`` in absolute value, differ by
    at most about ``terms · magnitude · eps`` (each partial sum rounds once, by at most eps/2 of its
    size); ``ulps`` is the safety factor. The bound scales with the dtype, the size of the values and
    the number of terms summed, so it holds on every CPU's kernels (AVX2, AVX-512 and AMX hosts order
    their sums differently), where a fixed 1e-14 does not. A real bug moves results by far more.
    """
    return ulps * terms * magnitude * torch.finfo(dtype).eps


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


@pytest.fixture(scope="session")
def published_float64_run(tmp_path_factory, parity_inputs):
    """The one float64 run of the published fixture model at 512² (minutes on 2 cores: float64 convolutions have
    no fast CPU kernel), shared by the parity and release tests: components converted in float64 by the convert
    API from the release's packaging (``latest_net_Corr.pth`` with foreign zip entries, tests/release_files.py),
    then ``pipe(...)`` with label tensors and a PIL exemplar, as users call it.

    Returns ``(output, conversion_warnings)``: the pipeline output (``warps`` coarse to fine and ``images``,
    float32 in [0, 1] computed in float64) and the warnings the conversion raised.
    """
    import warnings

    from PIL import Image

    from pipeline_cocosnet import CoCosNetPipeline
    from pipeline_cocosnet.convert import convert_checkpoints

    from .release_files import write_release_checkpoints

    folder = write_release_checkpoints(tmp_path_factory.mktemp("release64") / "deepfashionHD")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        correspondence, translator = convert_checkpoints(
            folder / "latest_net_Corr.pth", folder / "latest_net_G.pth", dtype=torch.float64
        )
    pipe = CoCosNetPipeline(correspondence, translator, task="pose-to-body", resolution=(512, 512))
    pipe.set_progress_bar_config(disable=True)
    label, _, exemplar_label = parity_inputs
    with np.load(PARITY / "parity_inputs.npz") as data:
        exemplar = Image.fromarray(data["exemplar"][0].transpose(1, 2, 0))
    output = pipe(label[0], exemplar, exemplar_label[0], output_type="pt", return_warps=True)
    return output, [str(w.message) for w in caught]


@pytest.fixture
def chromium() -> tuple[object, str]:
    """(playwright.sync_api, path of a Chromium executable) for the browser tests; skips without them."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return playwright, path
    pytest.skip("no chromium found (Debian: apt-get install -y chromium)")


def translate_example_in_browser(page, label: str, timeout_ms: int = 60_000) -> None:
    """Mask-to-image tab in a Playwright page: click the example named ``label``, then Translate, and
    wait until the result image has loaded."""
    page.get_by_text(label).click()
    page.wait_for_timeout(1000)
    page.locator("#mask-to-image-translate").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('#mask-to-image-result img'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=timeout_ms,
    )
