"""The embedded demo model (procedural scenes → mask-to-image) and the scenes generator / dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet import DEMO_MODEL, CoCosNetPipeline, demo_model_path
from pipeline_cocosnet.processing.formats.ade20k import ADE20K_CLASSES, ADE20K_LABEL_CHANNELS
from pipeline_cocosnet.tasks import task_for_data
from pipeline_cocosnet.training.data.scenes import (
    SCENE_CLASS_IDS,
    SCENE_CLASSES,
    make_layout,
    make_scene,
    transformed_pair,
)

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "demo_model_reference.png"
#: the documented fixed example: layout of scene 5006, appearance of scene 5012 (held-out seeds), 128×128
STRUCTURE_SEED, EXEMPLAR_SEED = 5006, 5012


# ----------------------------------------------------------------------------- generator


def test_scene_classes_are_the_ade20k_ids():
    for name, ade_id in SCENE_CLASSES.items():
        assert ADE20K_CLASSES[ade_id - 1] == name
    assert SCENE_CLASSES["sky"] == 3 and SCENE_CLASSES["tree"] == 5 and SCENE_CLASSES["sea"] == 27


def test_scenes_are_deterministic_per_seed():
    for seed in (0, 1, 12345):
        mask_a, image_a = make_scene(seed, (64, 96))
        mask_b, image_b = make_scene(seed, (64, 96))
        assert mask_a.shape == (64, 96) and image_a.shape == (64, 96, 3)
        assert mask_a.dtype == np.uint8 and image_a.dtype == np.uint8
        np.testing.assert_array_equal(mask_a, mask_b)
        np.testing.assert_array_equal(image_a, image_b)
    assert make_layout(3) == make_layout(3)
    assert not np.array_equal(make_scene(0, (64, 64))[1], make_scene(1, (64, 64))[1])


def test_scenes_use_only_the_listed_ade20k_ids():
    seen = set()
    for seed in range(40):
        mask, _ = make_scene(seed, (64, 64))
        ids = set(np.unique(mask).tolist())
        assert ids <= SCENE_CLASS_IDS, ids - SCENE_CLASS_IDS
        assert SCENE_CLASSES["sky"] in ids
        seen |= ids
    assert len(seen) >= 8  # the layouts really vary


def test_palette_changes_colours_not_layout():
    mask_a, image_a = make_scene(5, (64, 64))
    mask_b, image_b = make_scene(5, (64, 64), palette_seed=99)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert np.abs(image_a.astype(int) - image_b.astype(int)).mean() > 10


def test_transformed_pair_is_deterministic_and_consistent():
    a, b = transformed_pair(7, (64, 64)), transformed_pair(7, (64, 64))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert a["label"].shape == (ADE20K_LABEL_CHANNELS, 64, 64)
    assert a["exemplar"].min() >= -1 and a["exemplar"].max() <= 1
    assert torch.equal(a["label"].argmax(0), a["mask"])
    assert not torch.equal(a["exemplar"], a["target"])  # a real transform


# ----------------------------------------------------------------------------- dataset kind


def _scenes_config(**overrides):
    from pipeline_cocosnet.training.config import load_config

    items = ["data.kind=scenes", "data.size=[64, 64]", "data.num_samples=8", "model.label_channels=151"]
    return load_config(None, items + [f"{k}={v}" for k, v in overrides.items()])


def test_scenes_dataset_kind():
    from pipeline_cocosnet.training.data import build_dataset

    config = _scenes_config()
    dataset = build_dataset(config.data, config.model.label_channels)
    assert len(dataset) == 8 and task_for_data("scenes").name == "mask-to-image"
    sample = dataset[3]
    assert sample["label"].shape == (151, 64, 64) and sample["exemplar_label"].shape == (151, 64, 64)
    assert sample["image"].shape == sample["exemplar"].shape == sample["warp_target"].shape == (3, 64, 64)
    assert float(sample["same_content"]) == 1.0
    assert set(sample["label"].argmax(0).unique().tolist()) <= SCENE_CLASS_IDS
    again = build_dataset(config.data, config.model.label_channels)[3]
    for key in ("label", "image", "exemplar", "exemplar_label", "warp_target"):
        assert torch.equal(sample[key], again[key]), key


def test_scenes_dataset_cross_layout_pairs():
    from pipeline_cocosnet.training.data import build_dataset

    config = _scenes_config(**{"data.scene_pair_probability": 1.0})
    dataset = build_dataset(config.data, config.model.label_channels)
    sample = dataset[0]
    assert torch.equal(sample["warp_target"], sample["image"])  # same palette, other layout
    assert not torch.equal(sample["exemplar_label"], sample["label"])


def test_scenes_dataset_needs_ade20k_channels():
    from pipeline_cocosnet.training.data import build_dataset

    config = _scenes_config(**{"model.label_channels": 20})
    with pytest.raises(ValueError, match="151"):
        build_dataset(config.data, config.model.label_channels)


# ----------------------------------------------------------------------------- shipped weights


def fixed_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(structure mask, exemplar photo, exemplar mask) of the documented example, 128×128."""
    mask, _ = make_scene(STRUCTURE_SEED, (128, 128))
    exemplar_mask, exemplar = make_scene(EXEMPLAR_SEED, (128, 128))
    return mask, exemplar, exemplar_mask


def demo_output(pipe: CoCosNetPipeline) -> np.ndarray:
    """The demo model's H×W×3 float output in [0, 1] for :func:`fixed_example`."""
    mask, exemplar, exemplar_mask = fixed_example()
    return pipe(mask, exemplar, exemplar_mask, output_type="np").images[0]


def reference_thumbnail(output: np.ndarray) -> np.ndarray:
    """16×16 block means of the output, uint8: robust to PatchMatch's small numerical differences."""
    h, w, _ = output.shape
    return (output.reshape(16, h // 16, 16, w // 16, 3).mean((1, 3)) * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def demo_pipe():
    return CoCosNetPipeline.from_pretrained(DEMO_MODEL)


def test_demo_weights_are_packaged():
    folder = demo_model_path()
    assert (folder / "model_index.json").is_file()
    assert (folder / "README.md").is_file() and (folder / "train_demo_scenes.yaml").is_file()
    weights = list(folder.rglob("*.safetensors"))
    assert len(weights) == 2
    assert sum(p.stat().st_size for p in weights) <= 10 * 10**6  # issue 16: small (≤ 10 MB); 9.2 MB in fp16
    assert "procedural scenes" in (folder / "README.md").read_text()


def test_demo_loads_as_documented(demo_pipe):
    assert demo_pipe.is_demo
    assert demo_pipe.config.origin.startswith("demo weights trained on procedural scenes")
    assert demo_pipe.config.task == "mask-to-image"
    assert demo_pipe.label_channels == ADE20K_LABEL_CHANNELS
    assert list(demo_pipe.config.resolution) == [128, 128]
    assert demo_pipe.correspondence.dtype == torch.float32 and demo_pipe.device.type == "cpu"


def test_demo_output_matches_reference_and_follows_the_mask(demo_pipe):
    output = demo_output(demo_pipe)
    assert output.shape == (128, 128, 3)
    reference = np.asarray(Image.open(REFERENCE).convert("RGB")).astype(np.float32)
    difference = np.abs(reference_thumbnail(output).astype(np.float32) - reference).mean() / 255
    assert difference < 0.03, difference

    # not constant, and it follows the structure: most of the variance is between classes
    assert output.std() > 0.05
    mask, exemplar, exemplar_mask = fixed_example()
    grey = output.mean(-1)
    class_means = np.zeros_like(grey)
    for cls in np.unique(mask):
        class_means[mask == cls] = grey[mask == cls].mean()
    assert class_means.var() / grey.var() > 0.4
    # the sky takes the exemplar's sky colour rather than its ground's
    sky, ground = SCENE_CLASSES["sky"], SCENE_CLASSES["grass"]
    assert {sky, ground} <= set(np.unique(mask)) & set(np.unique(exemplar_mask))
    out_sky = output[mask == sky].mean(0)
    ex_sky, ex_ground = (exemplar[exemplar_mask == c].mean(0) / 255 for c in (sky, ground))
    assert np.abs(out_sky - ex_sky).sum() < np.abs(out_sky - ex_ground).sum()


# ----------------------------------------------------------------------------- packaging


def test_packaging_writes_a_demo_card_that_huggingface_hub_parses(tmp_path):
    from huggingface_hub import ModelCard

    from pipeline_cocosnet.training.demo import package_demo

    from .conftest import tiny_models

    CoCosNetPipeline(*tiny_models(3), resolution=(64, 64), origin="trained on scenes").save_pretrained(tmp_path / "trained")
    (tmp_path / "train.yaml").write_text("data: {kind: scenes}\n")
    folder = package_demo(tmp_path / "trained", tmp_path / "train.yaml", tmp_path / "demo", quality="| warp L1 | 0.1 |")
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "mit" and "demo" in card.data.tags and card.data.library_name == "pipeline_cocosnet"
    assert card.data.to_dict()["origin"].startswith("demo weights trained on procedural scenes")
    assert "| warp L1 | 0.1 |" in card.text and "not on ADE20k" in card.text and "NOT ADE20k" in card.data.origin
    assert CoCosNetPipeline.from_pretrained(folder).is_demo


def test_the_shipped_demo_card_parses():
    from huggingface_hub import ModelCard

    card = ModelCard.load(demo_model_path() / "README.md")
    assert card.data.license == "mit" and "demo" in card.data.tags
