"""Structure from photos: pose estimation, ADE20k segmentation, exemplar suggestions (all offline).

The transformers backends run on tiny randomly initialised models built from configs and
saved to a temporary folder (loaded by path, so nothing is downloaded). Random weights say
nothing about quality, so these tests check the plumbing exactly: COCO → OpenPose mapping,
photo → canvas scaling, class-id offsets, caching, errors. The MediaPipe test runs the real
shipped model on real photos when mediapipe (with its legacy solutions) is installed.
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet import CoCosNetPipeline, ExemplarSuggestion
from pipeline_cocosnet.processing import (
    ADE20KMaskEncoder,
    BackendMissingError,
    ModelUnavailableError,
    PoseEncoder,
    StructureError,
    TransformersSegmenter,
    VitPoseEstimator,
    coco17_to_openpose18,
    mask_to_palette,
    render_pose_label,
    scale_keypoints_to_canvas,
)
from pipeline_cocosnet.processing.backends.pose_estimation import COCO17_TO_OPENPOSE18, MediaPipePoseEstimator

from .conftest import FIXTURES, tiny_models

PHOTOS = FIXTURES / "photos"
transformers = pytest.importorskip("transformers")
pytest.importorskip("scipy")


@pytest.fixture(autouse=True)
def hub_offline(monkeypatch):
    """No test may reach the Hub: offline mode makes a miss fail at once instead of retrying."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded (and the machine's cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(PHOTOS / "astronaut.jpg").convert("RGB")


@pytest.fixture(scope="module")
def portrait() -> Image.Image:  # 3:4, so the square padding matters
    return Image.open(PHOTOS / "grace_hopper.jpg").convert("RGB").resize((96, 128))


# --------------------------------------------------------------------------- tiny transformers models


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory):
    """Folders holding tiny random ViTPose, RT-DETR (one class: person), SegFormer and UperNet models."""
    tf = transformers
    root = tmp_path_factory.mktemp("tiny_hub")
    torch.manual_seed(0)
    backbone = tf.VitPoseBackboneConfig(
        image_size=(64, 48), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2, out_indices=[1]
    )
    tf.VitPoseForPoseEstimation(tf.VitPoseConfig(backbone_config=backbone, num_labels=17)).save_pretrained(root / "vitpose")
    tf.VitPoseImageProcessor(size={"height": 64, "width": 48}).save_pretrained(root / "vitpose")
    resnet = tf.RTDetrResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )  # fmt: skip
    detector = tf.RTDetrConfig(
        backbone_config=resnet, encoder_hidden_dim=16, encoder_in_channels=[16, 16, 16], encoder_ffn_dim=16,
        encoder_attention_heads=2, d_model=16, num_queries=10, decoder_in_channels=[16, 16, 16], decoder_ffn_dim=16,
        decoder_layers=1, decoder_attention_heads=2, num_denoising=0, id2label={0: "person"}, label2id={"person": 0},
    )  # fmt: skip
    tf.RTDetrForObjectDetection(detector).save_pretrained(root / "rtdetr")
    tf.RTDetrImageProcessor(size={"height": 64, "width": 64}).save_pretrained(root / "rtdetr")
    for name, classes in [("segformer", 150), ("segformer151", 151), ("segformer19", 19)]:
        config = tf.SegformerConfig(
            num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
            strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2], decoder_hidden_size=16, num_labels=classes,
        )  # fmt: skip
        tf.SegformerForSemanticSegmentation(config).save_pretrained(root / name)
        tf.SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(root / name)
    convnext = tf.ConvNextConfig(hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], out_features=["stage1", "stage2", "stage3", "stage4"])
    upernet = tf.UperNetConfig(backbone_config=convnext, hidden_size=16, num_labels=150, use_auxiliary_head=False)
    tf.UperNetForSemanticSegmentation(upernet).save_pretrained(root / "upernet")
    tf.SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(root / "upernet")
    return root


@pytest.fixture(scope="module")
def vitpose(tiny_hub) -> VitPoseEstimator:
    # random heatmaps: keep every keypoint and every box
    return VitPoseEstimator(
        str(tiny_hub / "vitpose"), str(tiny_hub / "rtdetr"), detection_threshold=0.0, keypoint_threshold=-math.inf
    )


# --------------------------------------------------------------------------- COCO → OpenPose


def test_coco17_to_openpose18_by_hand():
    names = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_sho", "r_sho", "l_elb", "r_elb", "l_wri", "r_wri",
             "l_hip", "r_hip", "l_kne", "r_kne", "l_ank", "r_ank"]  # fmt: skip
    coco = np.array([[i * 10.0, i * 10.0 + 1] for i in range(17)])
    openpose = coco17_to_openpose18(coco)
    by_name = {name: tuple(coco[i]) for i, name in enumerate(names)}
    expected = [
        by_name["nose"], (55.0, 56.0),  # neck = midpoint of shoulders (50, 51) and (60, 61)
        by_name["r_sho"], by_name["r_elb"], by_name["r_wri"], by_name["l_sho"], by_name["l_elb"], by_name["l_wri"],
        by_name["r_hip"], by_name["r_kne"], by_name["r_ank"], by_name["l_hip"], by_name["l_kne"], by_name["l_ank"],
        by_name["r_eye"], by_name["l_eye"], by_name["r_ear"], by_name["l_ear"],
    ]  # fmt: skip
    assert openpose == expected
    assert sorted(i for i in COCO17_TO_OPENPOSE18 if i is not None) == list(range(17))


def test_low_scores_are_missing_and_neck_needs_both_shoulders():
    coco = np.arange(34, dtype=float).reshape(17, 2)
    scores = np.ones(17)
    scores[[0, 6]] = 0.1  # nose, right shoulder
    openpose = coco17_to_openpose18(coco, scores, threshold=0.3)
    assert openpose[0] is None and openpose[2] is None and openpose[1] is None  # nose, r-shoulder, neck
    assert openpose[5] == (10.0, 11.0)  # left shoulder kept
    assert sum(p is None for p in openpose) == 3
    with pytest.raises(ValueError, match="17×2"):
        coco17_to_openpose18(np.zeros((18, 2)))


# --------------------------------------------------------------------------- ViTPose + RT-DETR


def test_vitpose_finds_18_keypoints_in_the_person_box(vitpose, astronaut):
    box = vitpose.person_box(astronaut)
    x, y, w, h = box
    assert w > 0 and h > 0 and 0 <= x and x + w <= astronaut.width + 1e-3 and y + h <= astronaut.height + 1e-3
    keypoints = vitpose(astronaut)
    assert len(keypoints) == 18 and all(p is not None for p in keypoints)
    (lx, ly), (rx, ry) = keypoints[5], keypoints[2]
    assert keypoints[1] == pytest.approx(((lx + rx) / 2, (ly + ry) / 2))


def test_vitpose_without_detector_uses_the_whole_photo(tiny_hub, portrait):
    estimator = VitPoseEstimator(str(tiny_hub / "vitpose"), None, keypoint_threshold=-math.inf)
    np.testing.assert_array_equal(estimator.person_box(portrait), [0, 0, 96, 128])
    assert len(estimator(portrait)) == 18


def test_no_person_box_gives_a_clear_structure_error(tiny_hub, astronaut):
    estimator = VitPoseEstimator(str(tiny_hub / "vitpose"), str(tiny_hub / "rtdetr"), detection_threshold=1.01)
    assert estimator(astronaut) is None
    with pytest.raises(StructureError, match="vitpose pose estimator found no person in the 512×512 photo"):
        PoseEncoder(estimator=estimator).extract(astronaut)


def test_pose_encoder_maps_photo_keypoints_to_the_padded_canvas(vitpose, portrait):
    encoder = PoseEncoder(estimator=vitpose)
    canvas = encoder.extract(portrait)
    assert canvas == scale_keypoints_to_canvas(vitpose(portrait), portrait.size)
    assert canvas[0][0] == pytest.approx((vitpose(portrait)[0][0] + 16) * 1024 / 128)  # 16 px of left padding
    # a photo is a pose structure: the label is the one of its canvas keypoints
    torch.testing.assert_close(encoder.encode(portrait, (64, 64)), render_pose_label(canvas, 64), rtol=0, atol=0)
    torch.testing.assert_close(encoder.encode(np.asarray(portrait), (64, 64)), render_pose_label(canvas, 64), rtol=0, atol=0)


def test_estimator_runs_once_per_photo(tiny_hub, portrait, monkeypatch):
    estimator = VitPoseEstimator(str(tiny_hub / "vitpose"), None, keypoint_threshold=-math.inf)
    calls = []
    original = estimator.estimate
    monkeypatch.setattr(estimator, "estimate", lambda photo: calls.append(1) or original(photo))
    encoder = PoseEncoder(estimator=estimator)
    encoder.render(portrait, (64, 64))
    encoder.encode(portrait.copy(), (64, 64))
    assert len(calls) == 1


def pose_pipeline(estimator) -> CoCosNetPipeline:
    pipe = CoCosNetPipeline(*tiny_models(20), task="pose-to-body", resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    pipe.structure_encoder = PoseEncoder(estimator=estimator)
    return pipe


def test_pose_pipeline_takes_photos_as_structure_and_exemplar(vitpose, astronaut, portrait):
    pipe = pose_pipeline(vitpose)
    out = pipe(astronaut, portrait, output_type="pt")  # exemplar without its pose: estimated
    keypoints = np.array([(np.nan, np.nan) if p is None else p for p in pipe.structure_encoder.extract(portrait)])
    explicit = pipe(astronaut, portrait, keypoints, output_type="pt")
    assert out.images.shape == (1, 3, 64, 64)
    torch.testing.assert_close(out.images, explicit.images)


def test_pose_pipeline_without_person_in_exemplar_says_what_to_pass(tiny_hub, astronaut):
    estimator = VitPoseEstimator(str(tiny_hub / "vitpose"), str(tiny_hub / "rtdetr"), detection_threshold=1.01)
    pipe = pose_pipeline(estimator)
    with pytest.raises(StructureError, match="found no person.*pass exemplar_structure="):
        pipe(np.full((18, 2), np.nan), astronaut)


# --------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize("model", ["segformer", "upernet"])
def test_segmenter_gives_ade20k_indices_at_photo_size(tiny_hub, portrait, model):
    mask = TransformersSegmenter(str(tiny_hub / model))(portrait)
    assert mask.shape == (128, 96) and mask.dtype == np.uint8
    assert mask.min() >= 1 and mask.max() <= 150  # 150-class models: argmax + 1, never 0 (unknown)


def test_151_class_models_are_taken_as_is_and_others_rejected(tiny_hub, portrait):
    segmenter = TransformersSegmenter(str(tiny_hub / "segformer151"))
    model = transformers.AutoModelForSemanticSegmentation.from_pretrained(str(tiny_hub / "segformer151")).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(str(tiny_hub / "segformer151"))
    with torch.no_grad():
        logits = model(**processor(images=portrait, return_tensors="pt")).logits
    expected = processor.post_process_semantic_segmentation(
        transformers.modeling_outputs.SemanticSegmenterOutput(logits=logits), target_sizes=[(128, 96)]
    )[0]
    np.testing.assert_array_equal(segmenter(portrait), expected.numpy())
    with pytest.raises(ValueError, match="predicts 19 classes"):
        TransformersSegmenter(str(tiny_hub / "segformer19"))(portrait)


def test_mask_encoder_segments_photos_but_reads_palette_images(tiny_hub, portrait):
    calls = []
    segmenter = TransformersSegmenter(str(tiny_hub / "segformer"))
    encoder = ADE20KMaskEncoder(segmenter=lambda photo: calls.append(photo.size) or segmenter(photo))
    mask = encoder.index_mask(portrait)
    np.testing.assert_array_equal(mask, segmenter(portrait))
    render = encoder.render(portrait, (32, 24))
    assert render.size == (24, 32)
    # palette images (PNG or JPEG-compressed) stay masks; the segmenter is not used for them
    blocks = np.repeat(np.repeat(np.array([[1, 3, 13], [5, 7, 21]], np.uint8), 40, 0), 40, 1)
    calls.clear()
    np.testing.assert_array_equal(encoder.index_mask(mask_to_palette(blocks)), blocks)
    with pytest.raises(StructureError, match="not ADE20k palette colours"):
        encoder.index_mask(jpeg(mask_to_palette(blocks)))
    assert calls == []
    forced = ADE20KMaskEncoder(input_format="photo", segmenter=segmenter)
    np.testing.assert_array_equal(forced.index_mask(mask_to_palette(blocks)), segmenter(mask_to_palette(blocks)))


def jpeg(image: Image.Image) -> Image.Image:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    return Image.open(buffer).convert("RGB")


def test_mask_pipeline_extracts_the_exemplar_mask_from_its_photo(tiny_hub, astronaut, portrait):
    pipe = CoCosNetPipeline(*tiny_models(151), task="mask-to-image", resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    encoder = ADE20KMaskEncoder(segmenter=str(tiny_hub / "segformer"))
    pipe.structure_encoder = encoder
    out = pipe(astronaut, portrait, output_type="pt")  # photo structure, exemplar without its mask
    explicit = pipe(encoder.extract(astronaut), portrait, encoder.extract(portrait), output_type="pt")
    torch.testing.assert_close(out.images, explicit.images)


# --------------------------------------------------------------------------- missing backends and models


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(BackendMissingError, match=r'pip install "pipeline_cocosnet\[pose\]"'):
        VitPoseEstimator()
    with pytest.raises(BackendMissingError, match=r'pip install "pipeline_cocosnet\[segmentation\]"'):
        TransformersSegmenter()
    # keypoint inputs never need the backend
    assert PoseEncoder().encode([None] * 18, (32, 32)).shape == (20, 32, 32)


def test_missing_or_too_new_mediapipe_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(BackendMissingError, match=r"pipeline_cocosnet\[pose-mediapipe\]"):
        MediaPipePoseEstimator()
    monkeypatch.setitem(sys.modules, "mediapipe", types.SimpleNamespace(__version__="1.2.3"))
    with pytest.raises(BackendMissingError, match=r"1\.2\.3 does not have.*mediapipe==0\.10\.21"):
        MediaPipePoseEstimator()


def test_unavailable_model_names_the_id_and_how_to_provide_it(portrait, tmp_path):
    with pytest.raises(ModelUnavailableError, match=r"'no-such-org/no-such-model'.*HF_HUB_OFFLINE.*hf download"):
        TransformersSegmenter("no-such-org/no-such-model")(portrait)
    with pytest.raises(ModelUnavailableError, match="local folder .* does not hold a loadable model"):
        VitPoseEstimator(str(tmp_path), None)(portrait)


def test_unknown_backend_names_are_rejected():
    with pytest.raises(ValueError, match="unknown pose estimator 'openpose'; known: vitpose, mediapipe"):
        PoseEncoder(estimator="openpose").estimator


# --------------------------------------------------------------------------- exemplar suggestions


def tied_pipeline(channels: int = 3) -> CoCosNetPipeline:
    """A tiny random pipeline whose exemplar side computes the structure side's features from the label.

    The exemplar encoder gets the structure encoder's weights (zero for the image channels)
    and φ = θ, so φ(exemplar, label) = θ(label) whatever the random weights: the matching
    features of a structure and of an exemplar with the same label coincide.
    """
    correspondence, translator = tiny_models(channels, seed=3)
    source = correspondence.structure_aligner.state_dict()
    tied = {}
    for name, value in correspondence.exemplar_aligner.state_dict().items():
        if value.shape == source[name].shape:
            tied[name] = source[name].clone()
        else:  # first dim 1 is 3 image channels + the label channels
            tied[name] = torch.cat([torch.zeros_like(value[:, :3]), source[name]], dim=1)
    correspondence.exemplar_aligner.load_state_dict(tied)
    correspondence.phi.load_state_dict(correspondence.theta.state_dict())
    pipe = CoCosNetPipeline(correspondence, translator, task=None, resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def blob_label(centre: tuple[int, int], radius: int = 12, size: int = 64) -> torch.Tensor:
    """A 3-channel label: one disc (channel 0), the band below it (1) and the rest (2)."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2).float()
    band = ((rows > centre[0] + radius) & (rows <= centre[0] + 2 * radius) & ((cols - centre[1]).abs() < radius)).float()
    return torch.stack([disc, band * (1 - disc), (1 - disc) * (1 - band)])


def test_suggestions_rank_a_shifted_copy_first():
    pipe = tied_pipeline()
    structure = blob_label((24, 24))
    rows = torch.arange(64).view(64, 1).expand(64, 64)
    stripes = torch.stack([(rows // 8 % 3 == c).float() for c in range(3)])
    uniform = torch.stack([torch.zeros(64, 64), torch.ones(64, 64), torch.zeros(64, 64)])
    gallery_labels = [stripes, torch.roll(structure, shifts=(8, 16), dims=(1, 2)), uniform]  # 1: shifted copy
    exemplars = torch.zeros(3, 3, 64, 64)
    suggestions = pipe.suggest_exemplars(structure, exemplars, gallery_labels)
    assert [s.index for s in suggestions][0] == 1
    assert all(isinstance(s, ExemplarSuggestion) for s in suggestions)
    scores = [s.score for s in suggestions]
    assert scores == sorted(scores, reverse=True) and all(-1 - 1e-5 <= s <= 1 + 1e-5 for s in scores)
    # the structure itself: every position finds its own feature, the maximum possible score
    (itself,) = pipe.suggest_exemplars(structure, [torch.zeros(3, 64, 64)], [structure])
    assert itself.score == pytest.approx(1.0, abs=1e-4)
    assert itself.score >= scores[0]


def test_suggestions_respect_top_k_and_check_inputs():
    pipe = tied_pipeline()
    structure = blob_label((32, 32))
    labels = [blob_label((32 + d, 32)) for d in (0, 20, 8, 16)]
    top = pipe.suggest_exemplars(structure, [torch.zeros(3, 64, 64)] * 4, labels, top_k=2)
    assert [s.index for s in top] == [0, 2]
    assert pipe.suggest_exemplars(structure, [torch.zeros(3, 64, 64)] * 4, labels, top_k=10)[:2] == top
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        pipe.suggest_exemplars(structure, [torch.zeros(3, 64, 64)], labels[:1], top_k=0)
    with pytest.raises(ValueError, match="2 exemplars but 1 exemplar structures"):
        pipe.suggest_exemplars(structure, [torch.zeros(3, 64, 64)] * 2, labels[:1])
    with pytest.raises(ValueError, match="exemplar_structures are required"):
        pipe.suggest_exemplars(structure, [torch.zeros(3, 64, 64)])
    with pytest.raises(ValueError, match="empty gallery"):
        pipe.suggest_exemplars(structure, [])


def test_suggest_command_prints_the_ranking(tmp_path, capsys):
    from pipeline_cocosnet.cli import main

    pipe = tied_pipeline()
    pipe.save_pretrained(tmp_path / "model")
    structure = blob_label((32, 32))
    np.save(tmp_path / "structure.npy", structure.numpy())
    gallery = []
    for i, d in enumerate((20, 0, 8)):
        np.save(tmp_path / f"label{i}.npy", blob_label((32 + d, 32)).numpy())
        Image.new("RGB", (64, 64)).save(tmp_path / f"photo{i}.png")
        gallery.append(i)
    args = ["suggest", "--model", str(tmp_path / "model"), "--structure", str(tmp_path / "structure.npy"), "--top-k", "2"]
    args += ["--exemplars", *(str(tmp_path / f"photo{i}.png") for i in gallery)]
    args += ["--exemplar-structures", *(str(tmp_path / f"label{i}.npy") for i in gallery)]
    assert main(args) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(rank, Path(path).name) for rank, _, path in lines] == [("1", "photo1.png"), ("2", "photo2.png")]
    assert float(lines[0][1]) == pytest.approx(1.0, abs=1e-3)


def test_suggestions_from_photos_through_the_pose_estimator(vitpose, astronaut, portrait):
    pipe = pose_pipeline(vitpose)
    suggestions = pipe.suggest_exemplars(astronaut, [portrait, astronaut, portrait], top_k=2)
    assert len(suggestions) == 2 and {s.index for s in suggestions} <= {0, 1, 2}
    # identical exemplars (same photo, same extracted pose) score identically; ties keep gallery order
    scores = {s.index: s.score for s in pipe.suggest_exemplars(astronaut, [portrait, astronaut, portrait])}
    assert scores[0] == pytest.approx(scores[2], abs=1e-6)


# --------------------------------------------------------------------------- MediaPipe on real photos


def _mediapipe_with_solutions() -> bool:
    try:
        import mediapipe
    except ImportError:
        return False
    return hasattr(getattr(mediapipe, "solutions", None), "pose")


@pytest.mark.skipif(not _mediapipe_with_solutions(), reason="needs mediapipe with the legacy solutions (0.10.21)")
@pytest.mark.parametrize("photo", ["astronaut.jpg", "grace_hopper.jpg"])
def test_mediapipe_keypoints_land_on_the_person(photo):
    image = Image.open(PHOTOS / photo).convert("RGB")
    keypoints = MediaPipePoseEstimator()(image)
    assert keypoints is not None
    nose, neck, r_shoulder, l_shoulder = keypoints[0], keypoints[1], keypoints[2], keypoints[5]
    assert None not in (nose, neck, r_shoulder, l_shoulder)
    assert nose[1] < neck[1]  # head above the shoulders
    assert r_shoulder[0] < l_shoulder[0]  # the person faces the camera: their right is on our left
    for x, y in (p for p in keypoints if p is not None):
        assert 0 <= x <= image.width and 0 <= y <= image.height * 1.5


def test_the_photo_cache_is_shared_safely_and_computes_outside_its_lock():
    """Two requests on different photos compute at the same time (each waits for the other inside its computation:
    a cache that held its lock while computing would deadlock here); both results are kept, then served from it."""
    import threading

    from pipeline_cocosnet.processing.backends.common import PhotoCache

    cache = PhotoCache(size=4)
    photos = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    inside = [threading.Event(), threading.Event()]
    results, calls = {}, []

    def compute(k):
        def run(photo):
            calls.append(k)
            inside[k].set()
            assert inside[1 - k].wait(10), "the other computation could not start"
            return k

        return run

    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, cache.get(photos[k], compute(k)))) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {0: 0, 1: 1} and sorted(calls) == [0, 1]
    assert cache.get(photos[0], compute(0)) == 0 and sorted(calls) == [0, 1]  # cached: not computed again
