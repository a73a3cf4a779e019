"""Dataset readers on tiny on-the-fly folders in each layout, malformed samples included."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.processing.encoders.edges import EdgeEncoder
from pipeline_cocosnet.processing.encoders.pose import PoseEncoder
from pipeline_cocosnet.training.config import DataConfig
from pipeline_cocosnet.training.data import (
    ADE20kDataset,
    DeepFashionHDDataset,
    EdgeFolderDataset,
    PairedFolderDataset,
    SampleError,
    SyntheticShapesDataset,
    build_dataset,
    make_scene,
    write_synthetic_folder,
)

SIZE = [64, 64]


def config(root, kind, **kwargs) -> DataConfig:
    return DataConfig(kind=kind, root=str(root), size=SIZE, num_workers=0, **kwargs)


def photo(path, size=(48, 64), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).save(path)
    return path


def check_sample(sample, channels):
    assert sample["label"].shape == (channels, *SIZE) and sample["exemplar_label"].shape == (channels, *SIZE)
    for name in ("image", "exemplar", "warp_target"):
        assert sample[name].shape == (3, *SIZE) and sample[name].min() >= -1 and sample[name].max() <= 1
    assert 0 <= sample["label"].min() and sample["label"].max() <= 1


# ------------------------------------------------------------------ DeepFashionHD


def write_pose(root, name, seed):
    rng = np.random.default_rng(seed)
    stem = root / "pose" / "MEN" / "id1" / name
    stem.parent.mkdir(parents=True, exist_ok=True)
    points = rng.uniform(200, 800, size=(18, 2))
    (root / "pose" / "MEN" / "id1" / f"{name}_candidate.txt").write_text(
        "\n".join(f"{x:.2f} {y:.2f} 0.9 {i}" for i, (x, y) in enumerate(points))
    )
    (root / "pose" / "MEN" / "id1" / f"{name}_subset.txt").write_text("\n".join(str(i) for i in [*range(18), 30, 18]))


@pytest.fixture
def deepfashion(tmp_path):
    root = tmp_path / "deepfashionHD"
    for i, name in enumerate(["01_1_front", "02_1_side", "03_1_back"]):
        photo(root / "img" / "MEN" / "id1" / f"{name}.jpg", seed=i)
        write_pose(root, name, i)
    pairs = tmp_path / "deepfashion_self_pair.txt"
    pairs.write_text("img/MEN/id1/01_1_front.jpg,img/MEN/id1/02_1_side.jpg\n")
    return root, pairs


def test_deepfashion_labels_are_the_inference_encoding_and_pairs_give_the_partner(deepfashion):
    root, pairs = deepfashion
    data = DeepFashionHDDataset(config(root, "deepfashionhd", pairs_file=str(pairs)), 20)
    assert data.keys == ["img/MEN/id1/01_1_front.jpg", "img/MEN/id1/02_1_side.jpg", "img/MEN/id1/03_1_back.jpg"]
    sample = data[0]
    check_sample(sample, 20)
    pose = root / "pose" / "MEN" / "id1"
    expected = PoseEncoder().encode((pose / "01_1_front_candidate.txt", pose / "01_1_front_subset.txt"), (64, 64))
    assert torch.equal(sample["label"], expected)
    partner = PoseEncoder().encode((pose / "02_1_side_candidate.txt", pose / "02_1_side_subset.txt"), (64, 64))
    assert torch.equal(sample["exemplar_label"], partner) and sample["same_content"] == 1
    assert torch.equal(sample["warp_target"], sample["image"])  # a real pair: the target itself
    assert data[2]["same_content"] == 1 and not torch.equal(data[2]["exemplar"], data[2]["image"])  # self-supervised


def test_deepfashion_missing_keypoint_file_is_reported_with_its_path(deepfashion, caplog):
    root, pairs = deepfashion
    missing = root / "pose" / "MEN" / "id1" / "03_1_back_subset.txt"
    missing.unlink()
    with pytest.raises(SampleError, match=r"03_1_back\.jpg: missing .*03_1_back_subset\.txt"):
        DeepFashionHDDataset(config(root, "deepfashionhd"), 20)
    with caplog.at_level(logging.WARNING, "pipeline_cocosnet.training"):
        data = DeepFashionHDDataset(config(root, "deepfashionhd", on_error="skip"), 20)
    assert len(data) == 2 and "03_1_back_subset.txt" in caplog.text


def test_deepfashion_malformed_keypoints_skip_to_the_next_sample_or_raise(deepfashion, caplog):
    root, _ = deepfashion
    (root / "pose" / "MEN" / "id1" / "01_1_front_subset.txt").write_text("0\n1\n")
    with pytest.raises(SampleError, match="01_1_front_subset.txt"):
        DeepFashionHDDataset(config(root, "deepfashionhd"), 20)[0]
    data = DeepFashionHDDataset(config(root, "deepfashionhd", on_error="skip"), 20)
    with caplog.at_level(logging.WARNING, "pipeline_cocosnet.training"):
        sample = data[0]
    assert sample["key"] == "img/MEN/id1/02_1_side.jpg" and "01_1_front_subset.txt" in caplog.text
    assert "img/MEN/id1/01_1_front.jpg" in data.problems


def test_pair_partner_that_does_not_exist_is_reported(deepfashion):
    root, pairs = deepfashion
    pairs.write_text("img/MEN/id1/01_1_front.jpg,img/MEN/id1/99_gone.jpg\n")
    with pytest.raises(SampleError, match="99_gone.jpg"):
        DeepFashionHDDataset(config(root, "deepfashionhd", pairs_file=str(pairs)), 20)


# ------------------------------------------------------------------ ADE20k


@pytest.fixture
def ade(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    for i in range(3):
        image = photo(root / "images" / "training" / f"ADE_train_{i:08d}.jpg", size=(40, 30), seed=i)
        mask = np.random.default_rng(i).integers(0, 151, size=(30, 40), dtype=np.uint8)
        (root / "annotations" / "training").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(root / "annotations" / "training" / f"{image.stem}.png")
    return root


def test_ade20k_one_hot_labels_and_retrieval_exemplars(ade, tmp_path):
    refs = tmp_path / "ade20k_ref.txt"
    refs.write_text("ADE_train_00000000,ADE_train_00000002\n")
    data = ADE20kDataset(config(ade, "ade20k", retrieval_file=str(refs), retrieval_probability=1.0), 151)
    sample = data[0]
    check_sample(sample, 151)
    assert torch.equal(sample["label"].sum(0), torch.ones(64, 64))  # exactly one class per pixel
    assert sample["same_content"] == 0  # a retrieved exemplar: no warp loss
    assert data[1]["same_content"] == 1  # not in the list: self-supervised


def test_ade20k_mask_size_mismatch_and_missing_mask_are_reported(ade, caplog):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(ade / "annotations" / "training" / "ADE_train_00000001.png")
    with pytest.raises(SampleError, match=r"ADE_train_00000001\.png is 10×10 but photo .*ADE_train_00000001\.jpg is 40×30"):
        ADE20kDataset(config(ade, "ade20k"), 151)[1]
    (ade / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    with pytest.raises(SampleError, match=r"ADE_train_00000002\.jpg: no mask"):
        ADE20kDataset(config(ade, "ade20k"), 151)
    with caplog.at_level(logging.WARNING, "pipeline_cocosnet.training"):
        data = ADE20kDataset(config(ade, "ade20k", on_error="skip"), 151)
        assert data.keys == ["ADE_train_00000000", "ADE_train_00000001"]
        assert data[1]["key"] == "ADE_train_00000000"  # the mismatched one is skipped
    assert "10×10" in caplog.text and "no mask" in caplog.text


# ------------------------------------------------------------------ edges


def test_edge_folder_uses_the_inference_edge_function_and_reports_unreadable_images(tmp_path, caplog):
    root = tmp_path / "metfaces"
    for i in range(2):
        photo(root / f"{i:05d}.png", size=(80, 80), seed=i)
    data = EdgeFolderDataset(config(root, "edges"), 1)
    sample = data[0]
    check_sample(sample, 1)
    expected = EdgeEncoder(channels=1).encode(Image.open(root / "00000.png"), (64, 64))
    assert torch.equal(sample["label"], expected)
    assert set(sample["exemplar_label"].unique().tolist()) <= {0.0, 1.0}
    (root / "00001.png").write_bytes(b"not an image")
    with pytest.raises(SampleError, match=r"00001\.png"):
        EdgeFolderDataset(config(root, "edges"), 1)[1]
    with caplog.at_level(logging.WARNING, "pipeline_cocosnet.training"):
        assert EdgeFolderDataset(config(root, "edges", on_error="skip"), 1)[1]["key"] == "00000.png"
    assert "00001.png" in caplog.text


# ------------------------------------------------------------------ generic paired folder + synthetic


def test_paired_folder_reads_the_synthetic_layout_and_reports_problems(tmp_path):
    root = write_synthetic_folder(tmp_path / "pairs", 3, (64, 64), num_classes=4, seed=5)
    data = PairedFolderDataset(config(root, "paired"), 4)
    sample = data[0]
    check_sample(sample, 4)
    mask, _ = make_scene(5, (64, 64), 4)
    assert torch.equal(sample["label"].argmax(0), torch.from_numpy(mask.astype(np.int64)))
    (root / "structures" / "0002.png").unlink()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "structures" / "0001.png")
    with pytest.raises(SampleError, match=r"0002\.png: no structure"):
        PairedFolderDataset(config(root, "paired"), 4)
    data = PairedFolderDataset(config(root, "paired", on_error="skip"), 4)
    with pytest.raises(SampleError, match=r"0001\.png is 32×32 but image .*0001\.png is 64×64"):
        data.sample("0001", np.random.default_rng(0))
    assert data[1]["key"] == "0000" and "0001" in data.problems


def test_paired_folder_structure_of_the_wrong_size_is_an_error(tmp_path):
    root = write_synthetic_folder(tmp_path / "pairs", 1, (64, 64), num_classes=4)
    np.save(root / "structures" / "0000.npy", np.zeros((4, 32, 32), np.float32))
    (root / "structures" / "0000.png").unlink()
    with pytest.raises(SampleError, match=r"0000\.npy is 32×32 but image .*0000\.png is 64×64"):
        PairedFolderDataset(config(root, "paired"), 4)[0]


def test_synthetic_scenes_are_deterministic_per_seed_and_samples_per_epoch():
    a, b = make_scene(3), make_scene(3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(make_scene(4)[1], a[1])
    mask = a[0]
    assert mask.dtype == np.uint8 and 0 < len(np.unique(mask)) <= 4
    data = build_dataset(DataConfig(kind="synthetic", size=SIZE, num_samples=4, num_classes=4), 4)
    assert isinstance(data, SyntheticShapesDataset)
    first = data[1]
    assert torch.equal(first["exemplar"], data[1]["exemplar"])
    data.set_epoch(1)
    assert torch.equal(first["label"], data[1]["label"]) and not torch.equal(first["exemplar"], data[1]["exemplar"])
    # self-supervised: the exemplar is a warped, colour-jittered copy; the warp target has its colours, not its geometry
    assert first["same_content"] == 1 and not torch.equal(first["warp_target"], first["image"])


def test_crop_and_channel_checks(tmp_path):
    data = build_dataset(DataConfig(kind="synthetic", size=SIZE, load_size=72, num_samples=2, num_classes=4), 4)
    check_sample(data[0], 4)
    with pytest.raises(ValueError, match="num_classes = 4 channels but model.label_channels is 3"):
        build_dataset(DataConfig(kind="synthetic", size=SIZE, num_classes=4), 3)
    with pytest.raises(ValueError, match="unknown data.kind 'coco'"):
        build_dataset(DataConfig(kind="coco"), 3)
