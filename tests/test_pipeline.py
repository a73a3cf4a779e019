"""CoCosNetPipeline: inputs, outputs, saving/loading (folders, fake hub cache), push_to_hub, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from PIL import Image

from pipeline_cocosnet import CoCosNetPipeline, CoCosNetPipelineOutput
from pipeline_cocosnet.convert import convert_checkpoints
from pipeline_cocosnet.processing import StructureError
from pipeline_cocosnet.processing.images import ImageError
from pipeline_cocosnet.processing.formats.keypoints import load_openpose_keypoints

from .conftest import FIXTURES, PARITY, random_inputs, tiny_models

POSES = FIXTURES / "pose"
CL = 3


def label_pipeline(seed: int = 0) -> CoCosNetPipeline:
    """A tiny random pipeline without a task: it takes encoded label tensors."""
    pipe = CoCosNetPipeline(*tiny_models(CL, seed=seed), task=None, resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pose_pipeline() -> CoCosNetPipeline:
    pipe = CoCosNetPipeline(*tiny_models(20), task="pose-to-body", resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe():
    return label_pipeline()


@pytest.fixture(scope="module")
def inputs():
    label, exemplar, exemplar_label = random_inputs(2, CL, 64, 64)
    return label, exemplar, exemplar_label


def call(pipe, inputs, **kwargs):
    label, exemplar, exemplar_label = inputs
    return pipe(label, list(exemplar), exemplar_label, **kwargs)


# ---------------------------------------------------------------- outputs


def test_pil_output_by_default(pipe, inputs):
    out = call(pipe, inputs)
    assert isinstance(out, CoCosNetPipelineOutput) and out.warps is None
    assert [im.size for im in out.images] == [(64, 64), (64, 64)]


def test_np_and_pt_outputs_are_in_unit_range(pipe, inputs):
    as_np = call(pipe, inputs, output_type="np").images
    as_pt = call(pipe, inputs, output_type="pt").images
    assert as_np.shape == (2, 64, 64, 3) and as_pt.shape == (2, 3, 64, 64)
    assert 0 <= as_pt.min() and as_pt.max() <= 1
    np.testing.assert_allclose(as_np, as_pt.permute(0, 2, 3, 1).numpy())


def test_warps_per_level_on_request(pipe, inputs):
    out = call(pipe, inputs, return_warps=True, output_type="pt")
    assert [tuple(w.shape) for w in out.warps] == [(2, 3, 8, 8), (2, 3, 16, 16), (2, 3, 32, 32), (2, 3, 64, 64)]


def test_patchmatch_iterations_is_the_speed_quality_dial(pipe, inputs):
    # the model's own count by default; fewer steps give a different (coarser) finest warp
    default = call(pipe, inputs, output_type="pt", return_warps=True)
    five = call(pipe, inputs, output_type="pt", return_warps=True, patchmatch_iterations=5)
    one = call(pipe, inputs, output_type="pt", return_warps=True, patchmatch_iterations=1)
    assert pipe.correspondence.config.iterations == 5
    assert torch.equal(default.images, five.images)
    assert torch.equal(one.warps[0], default.warps[0])  # the dense level has no iterations
    assert not torch.equal(one.warps[-1], default.warps[-1])


def test_tuple_without_return_dict(pipe, inputs):
    (images,) = call(pipe, inputs, return_dict=False)
    images_and_warps = call(pipe, inputs, return_dict=False, return_warps=True)
    assert len(images) == 2 and len(images_and_warps) == 2 and len(images_and_warps[1]) == 4


def test_pipeline_equals_the_model_level_call(pipe, inputs):
    label, exemplar, exemplar_label = inputs
    with torch.no_grad():
        warps = pipe.correspondence(label, exemplar, exemplar_label).warps
        expected = (pipe.translator(label, warps) / 2 + 0.5).clamp(0, 1)
    assert torch.equal(call(pipe, inputs, output_type="pt").images, expected)


def test_one_exemplar_serves_a_batch(inputs):
    pipe = CoCosNetPipeline(*tiny_models(CL, dtype=torch.float64), resolution=(64, 64))  # float64: see test_models
    pipe.set_progress_bar_config(disable=True)
    label, exemplar, exemplar_label = inputs
    out = pipe(label, exemplar[0], exemplar_label[0], output_type="pt").images
    single = pipe(label[1], exemplar[0], exemplar_label[0], output_type="pt").images
    assert out.shape[0] == 2
    torch.testing.assert_close(out[1:], single, atol=1e-6, rtol=0)


def test_pil_and_uint8_exemplars_are_scaled_to_minus_one_one(pipe, inputs):
    label, _, exemplar_label = inputs
    photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    as_tensor = torch.from_numpy(photo).permute(2, 0, 1).float() / 255 * 2 - 1
    a = pipe(label[0], Image.fromarray(photo), exemplar_label[0], output_type="pt").images
    b = pipe(label[0], photo, exemplar_label[0], output_type="pt").images
    c = pipe(label[0], as_tensor, exemplar_label[0], output_type="pt").images
    assert torch.equal(a, b) and torch.equal(a, c)


def test_requested_size_and_resizing_back(pipe, inputs):
    label, exemplar, exemplar_label = inputs
    out = pipe(label[0], exemplar[0], exemplar_label[0], height=64, width=128, return_warps=True)
    assert out.images[0].size == (128, 64) and out.warps[-1][0].size == (128, 64)


def test_match_input_size_resizes_to_the_structure_image():
    pipe = pose_pipeline()
    pipe.register_to_config(task=None)  # use labels from arrays, as images of their own size
    label = random_inputs(1, 20, 96, 96)[0][0]
    out = pipe(label, Image.new("RGB", (50, 70)), label, height=64, width=64, match_input_size=True)
    assert out.images[0].size == (96, 96)


def test_progress_bar_can_be_disabled(inputs, capsys):
    pipe = label_pipeline()
    call(pipe, inputs)
    assert "it/s" not in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=False)
    call(pipe, inputs)
    assert "6/6" in capsys.readouterr().err


# ---------------------------------------------------------------- saving and loading


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path, pipe, inputs):
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "correspondence" / "diffusion_pytorch_model.safetensors").is_file()
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["cocosnet_pipeline", "CoCosNetPipeline"] and index["resolution"] == [64, 64]
    loaded = CoCosNetPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(call(loaded, inputs, output_type="pt").images, call(pipe, inputs, output_type="pt").images)


def test_dtype_and_variant_on_loading(tmp_path, pipe):
    pipe.save_pretrained(tmp_path, variant="fp16")
    loaded = CoCosNetPipeline.from_pretrained(tmp_path, variant="fp16", dtype=torch.bfloat16)
    assert loaded.correspondence.dtype == torch.bfloat16 and loaded.translator.dtype == torch.bfloat16
    assert list((tmp_path / "translator").glob("*.fp16.safetensors"))


def test_half_precision_components_run_end_to_end(pipe, inputs):
    """bfloat16 weights (as from_pretrained(dtype=...)): convs in bf16, matching promoted to float32."""
    half = CoCosNetPipeline(*(torch.nn.Module.to(m, torch.bfloat16) for m in tiny_models(CL)), resolution=(64, 64))
    half.set_progress_bar_config(disable=True)
    out = call(half, inputs, output_type="pt", return_warps=True)
    assert out.images.dtype == torch.float32 and torch.isfinite(out.images).all()
    reference = call(pipe, inputs, output_type="pt", return_warps=True)
    # the dense level depends only on the bf16 features: close to float32, not bf16-coarse
    assert (out.warps[0] - reference.warps[0]).abs().mean() < 0.05


def fake_hub_cache(tmp_path: Path, pipe: CoCosNetPipeline, repo_id: str) -> Path:
    """A hub cache laid out as huggingface_hub writes it: models--org--name/{refs/main, snapshots/<sha>}."""
    cache = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    pipe.save_pretrained(repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return cache


def test_loading_a_repo_id_offline_from_the_hub_cache(tmp_path, pipe, inputs):
    cache = fake_hub_cache(tmp_path, pipe, "someone/cocosnet-tiny")
    label, exemplar, exemplar_label = inputs
    np.save(tmp_path / "label.npy", label.numpy())
    np.save(tmp_path / "exemplar.npy", exemplar.numpy())
    np.save(tmp_path / "exemplar_label.npy", exemplar_label.numpy())
    script = (
        "import sys, numpy as np, torch\n"
        "from safetensors.torch import save_file\n"
        "from pipeline_cocosnet import CoCosNetPipeline\n"
        "pipe = CoCosNetPipeline.from_pretrained('someone/cocosnet-tiny')\n"
        "pipe.set_progress_bar_config(disable=True)\n"
        "d = sys.argv[1]\n"
        "t = [torch.from_numpy(np.load(f'{d}/{n}.npy')) for n in ('label', 'exemplar', 'exemplar_label')]\n"
        "np.save(f'{d}/out.npy', pipe(t[0], list(t[1]), t[2], output_type='np').images)\n"
        "save_file({f'{name}.{k}': v.contiguous() for name in ('correspondence', 'translator')\n"
        "           for k, v in getattr(pipe, name).state_dict().items()}, f'{d}/weights.safetensors')\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # the Hub id resolved to exactly `pipe`'s weights (compared as tensors: two processes' float32 forwards
    # were seen to differ by 4e-6, so outputs are not compared bit for bit across processes)
    loaded = load_file(tmp_path / "weights.safetensors")
    ours = {f"{name}.{k}": v for name in ("correspondence", "translator") for k, v in getattr(pipe, name).state_dict().items()}
    assert loaded.keys() == ours.keys() and all(torch.equal(loaded[k], ours[k]) for k in ours)
    images = np.load(tmp_path / "out.npy")
    assert images.shape == (2, 64, 64, 3) and np.isfinite(images).all()


# ---------------------------------------------------------------- the published checkpoint


def test_converted_checkpoint_with_pose_encoder_equals_model_level_call(tmp_path):
    convert_checkpoints(PARITY / "official_Corr.safetensors", PARITY / "official_G.safetensors", tmp_path)
    pipe = CoCosNetPipeline.from_pretrained(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.task == "pose-to-body" and "converted" in pipe.config.origin
    exemplar = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8))
    structure = (POSES / "full_candidate.txt", POSES / "full_subset.txt")
    reference = POSES / "jittered_candidate.txt"  # its subset file is found beside it
    images = pipe(structure, exemplar, reference, height=256, width=256, output_type="pt").images

    encoder = pipe.structure_encoder
    label = encoder.encode(structure, (256, 256))[None]
    exemplar_label = encoder.encode(reference, (256, 256))[None]
    photo = np.asarray(encoder.prepare_exemplar(exemplar, (256, 256)), dtype=np.float32)
    exemplar_tensor = torch.from_numpy(photo).permute(2, 0, 1)[None] / 255 * 2 - 1
    with torch.no_grad():
        warps = pipe.correspondence(label, exemplar_tensor, exemplar_label).warps
        expected = (pipe.translator(label, warps) / 2 + 0.5).clamp(0, 1)
    assert torch.equal(images, expected)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda l, e, r: (l[:, :2], list(e), r), StructureError, r"must be 3×H×W \(the model's label channels\)"),
        (lambda l, e, r: (l, list(e), r, {"height": 50}), ValueError, r"size 50×64 is not supported"),
        (lambda l, e, r: ([], list(e), r), ValueError, "structure is an empty batch"),
        (lambda l, e, r: (l, [e[0], e[1], e[0]], r), ValueError, "got 2 structures but 3 exemplars"),
        (lambda l, e, r: (l, list(e), r[:1]), ValueError, "got 2 exemplars but 1 exemplar structures"),
        (lambda l, e, r: (l, list(e), r, {"output_type": "latent"}), ValueError, "output_type must be one of"),
        (lambda l, e, r: (l, list(e * 3), r), ImageError, r"tensor values must lie in \[-1, 1\]"),
        (lambda l, e, r: (l, [e[0][:2], e[1]], r), ImageError, r"must be 3×H×W \(RGB in \[-1, 1\]\)"),
        (lambda l, e, r: (l * 2, list(e), r), StructureError, r"encoded label must lie in \[0, 1\]"),
        (lambda l, e, r: (l, list(e), None), ValueError, "exemplar_structure is required"),
        (lambda l, e, r: (l, None, r), ValueError, "exemplar is required"),
        (lambda l, e, r: (l, ["/no/such/photo.png", e[1]], r), ImageError, r"exemplar\[0\]: file not found"),
        (lambda l, e, r: (l, list(e), r, {"patchmatch_iterations": 0}), ValueError, "patchmatch_iterations must be"),
    ],
)
def test_bad_inputs_get_clear_errors(pipe, inputs, make, error, message):
    args = make(*inputs)
    kwargs = args[3] if len(args) == 4 else {}
    with pytest.raises(error, match=message):
        pipe(*args[:3], **kwargs)


def test_corrupt_exemplar_file_is_named(tmp_path, pipe, inputs):
    broken = tmp_path / "photo.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    label, _, exemplar_label = inputs
    with pytest.raises(ImageError, match=r"cannot read .*photo\.jpg as an image"):
        pipe(label[0], broken, exemplar_label[0])


def test_pose_task_needs_the_exemplars_pose_or_an_extractor(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # the default estimator's models: not cached
    pipe = pose_pipeline()
    with pytest.raises(StructureError, match=r"came without exemplar_structure.*(cannot load model|pipeline_cocosnet\[pose\])"):
        pipe((POSES / "full_candidate.txt", POSES / "full_subset.txt"), Image.new("RGB", (64, 64)))


def test_pose_task_rejects_non_square_sizes():
    pipe = pose_pipeline()
    pose = POSES / "full_candidate.txt"
    with pytest.raises(StructureError, match="pose labels are square"):
        pipe(pose, Image.new("RGB", (64, 64)), pose, height=64, width=96)


def test_components_must_agree_with_the_task():
    with pytest.raises(ValueError, match="encodes structures into 20 channels but the model takes 3"):
        CoCosNetPipeline(*tiny_models(CL), task="pose-to-body")
    with pytest.raises(ValueError, match="unknown task 'sketch'"):
        CoCosNetPipeline(*tiny_models(CL), task="sketch")


def test_a_plain_keypoint_list_is_one_pose_not_a_batch():
    pipe = pose_pipeline()
    keypoints = load_openpose_keypoints(POSES / "full_candidate.txt", POSES / "full_subset.txt")
    as_list = [None if p is None else (float(p[0]), float(p[1])) for p in keypoints]
    exemplar = Image.new("RGB", (64, 64), (200, 120, 40))
    images = pipe(as_list, exemplar, as_list, output_type="pt").images
    assert images.shape[0] == 1
    batch = pipe([as_list, as_list], exemplar, as_list, output_type="pt").images
    assert batch.shape[0] == 2
