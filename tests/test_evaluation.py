"""`cocosnet evaluate`: SWD, the Fréchet distance, FID's plumbing, the VGG19 scores, the real set's cache."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.evaluation import evaluate as evaluation
from pipeline_cocosnet.evaluation.evaluate import evaluate
from pipeline_cocosnet.evaluation.frechet import frechet_distance, gaussian
from pipeline_cocosnet.evaluation.swd import laplacian_pyramid
from pipeline_cocosnet.training.vgg import save_random_vgg19

SCENES = Path(__file__).resolve().parents[1] / "examples" / "mask-to-image"


def image_folder(folder: Path, seed: int, count: int = 6, noise: float = 0.0, source: Path = SCENES) -> Path:
    """``count`` scene photos (64×64), with Gaussian noise of std ``noise`` (0..255 scale) added."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = sorted(p for p in source.glob("scene_*.png") if not p.stem.endswith("_mask"))
    for k in range(count):
        image = np.asarray(Image.open(photos[k % len(photos)]).convert("RGB").resize((64, 64)), np.float64)
        noisy = np.clip(image + noise * rng.standard_normal(image.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"pair{k:02d}.png")
    return folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(tmp_path / "assets"))


# ---------------------------------------------------------------- SWD


def test_the_laplacian_pyramid_adds_back_up_to_the_image():
    image = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    levels = laplacian_pyramid(image)
    assert [level.shape[-1] for level in levels] == [64, 32, 16]
    from pipeline_cocosnet.evaluation.swd import _blur

    rebuilt = levels[-1]
    for level in reversed(levels[:-1]):
        up = torch.zeros_like(level)
        up[..., ::2, ::2] = rebuilt
        rebuilt = level + 4 * _blur(up)
    torch.testing.assert_close(rebuilt, image, atol=1e-12, rtol=0)


def test_swd_is_zero_for_identical_sets_and_grows_with_noise(tmp_path):
    real = image_folder(tmp_path / "real", 0)
    values = []
    for noise in (0, 8, 32, 96):
        generated = image_folder(tmp_path / f"noise{noise}", 1, noise=noise)
        values.append(evaluate(generated, real, ["swd"], use_cache=False)["swd"]["value"])
    print("SWD ×10³ at noise 0/8/32/96:", [round(v, 2) for v in values])
    assert values[0] == 0.0 and values[1] < values[2] < values[3]


def test_swd_is_seeded_and_the_real_sets_descriptors_are_cached(tmp_path, monkeypatch):
    real = image_folder(tmp_path / "real", 0)
    generated = image_folder(tmp_path / "gen", 1, noise=20)
    first = evaluate(generated, real, ["swd"])["swd"]
    calls = []
    original = evaluation.swd_descriptors
    monkeypatch.setattr(evaluation, "swd_descriptors", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = evaluate(generated, real, ["swd"])["swd"]
    assert again == first and len(calls) == 1  # only the generated set was described again
    (real / "pair00.png").write_bytes((generated / "pair00.png").read_bytes())  # the real folder changed
    assert evaluate(generated, real, ["swd"])["swd"]["value"] != first["value"] and len(calls) == 3


# ---------------------------------------------------------------- Fréchet distance, FID


def test_the_frechet_distance_matches_scipys_formula_and_the_closed_form():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    for dim in (1, 5, 64):
        a, b = rng.standard_normal((dim, 2 * dim)), rng.standard_normal((dim, 2 * dim))
        sigma1, sigma2 = a @ a.T / dim, b @ b.T / dim
        mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
        root = scipy_linalg.sqrtm(sigma1 @ sigma2).real  # the formula as pytorch-fid writes it
        expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root)
        assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8, abs=1e-8)
    diag1, diag2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])  # commuting: Σ (√a − √b)²
    closed = 1.0 + np.sum((np.sqrt(diag1) - np.sqrt(diag2)) ** 2)
    assert frechet_distance(np.zeros(3), np.diag(diag1), np.eye(3)[0], np.diag(diag2)) == pytest.approx(closed, rel=1e-12)
    features = rng.standard_normal((200, 8))
    assert frechet_distance(*gaussian(features), *gaussian(features)) == pytest.approx(0.0, abs=1e-9)


def test_fid_without_weights_is_one_line_and_exit_2(tmp_path):
    folder = image_folder(tmp_path / "images", 0, count=2)
    run = subprocess.run(
        [sys.executable, "-m", "pipeline_cocosnet", "evaluate", "--generated", str(folder), "--real", str(folder), "--metrics", "fid"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1 and "--inception-weights FILE" in run.stderr and "pt_inception-2015-12-05" in run.stderr


def test_fid_runs_torch_fidelitys_extractor_on_uint8_images_and_caches_the_real_features(tmp_path, monkeypatch):
    """torch-fidelity (it needs torchvision, not installed here) replaced by a stand-in with its interface."""
    seen = []

    class FeatureExtractorInceptionV3(torch.nn.Module):
        def __init__(self, name, features_list, feature_extractor_weights_path=None):
            super().__init__()
            assert (name, features_list) == ("inception-v3-compat", ["2048"]) and Path(feature_extractor_weights_path).is_file()

        def forward(self, images):
            seen.append(images.dtype)
            pooled = images.double().mean(dim=(2, 3))  # B×3 "features"
            return (torch.cat([pooled, pooled.square() / 255], dim=1),)

    module = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    module.FeatureExtractorInceptionV3 = FeatureExtractorInceptionV3
    monkeypatch.setitem(sys.modules, "torch_fidelity", types.ModuleType("torch_fidelity"))
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", module)
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"weights")
    real = image_folder(tmp_path / "real", 0)
    same = evaluate(real, real, ["fid"], inception_weights=weights)["fid"]
    noisy = evaluate(image_folder(tmp_path / "gen", 1, noise=40), real, ["fid"], inception_weights=weights)["fid"]
    assert same["value"] == pytest.approx(0.0, abs=1e-6) and noisy["value"] > 1.0 and same["images"] == [6, 6]
    assert set(seen) == {torch.uint8} and len(seen) == 3  # real (once: then from the cache), itself, the noisy set


# ---------------------------------------------------------------- VGG19 scores


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    return save_random_vgg19(tmp_path_factory.mktemp("vgg") / "vgg19.pth", widths=(4, 8, 16, 32, 32))


def test_semantic_consistency_and_style_relevance(tmp_path, vgg):
    real = image_folder(tmp_path / "real", 0)
    noisy = image_folder(tmp_path / "noisy", 1, noise=60)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("structure,exemplar,name\n" + "".join(f"real/pair{k:02d}.png,real/pair{(k + 1) % 6:02d}.png,pair{k:02d}\n" for k in range(6)))
    same = evaluate(real, real, ["semantic"], vgg_weights=vgg)["semantic"]
    assert same["value"] == pytest.approx(1.0, abs=1e-9) and same["images"] == 6 and same["unmatched"] == 0
    assert evaluate(noisy, real, ["semantic"], vgg_weights=vgg)["semantic"]["value"] < 1 - 1e-4  # random narrow VGG: 0.9992
    style = evaluate(real, None, ["style"], pairs=pairs, vgg_weights=vgg)["style"]
    assert 0 < style["value"] < 1 and style["images"] == 6


def test_missing_requirements_are_said_before_any_image_is_read(tmp_path):
    folder = image_folder(tmp_path / "images", 0, count=2)
    with pytest.raises(ValueError, match="semantic and style need VGG19 weights"):
        evaluate(folder, folder, ["semantic"])
    with pytest.raises(ValueError, match="style needs --pairs"):
        evaluate(folder, folder, ["style"], vgg_weights=tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match="unknown metrics lpips"):
        evaluate(folder, folder, ["lpips"])
    with pytest.raises(ValueError, match="no images"):
        evaluate(tmp_path, folder, ["swd"])


def test_the_cli_prints_one_line_per_metric_and_writes_json(tmp_path, vgg):
    real = image_folder(tmp_path / "real", 0)
    generated = image_folder(tmp_path / "gen", 1, noise=20)
    run = subprocess.run(
        [sys.executable, "-m", "pipeline_cocosnet", "evaluate", "--generated", str(generated), "--real", str(real),
         "--metrics", "swd", "semantic", "--vgg-weights", str(vgg), "--json", str(tmp_path / "scores.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["swd", "semantic"]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores) == {"swd", "semantic", "details"} and scores["swd"] > 0 and len(scores["details"]["swd"]["levels"]) == 3
