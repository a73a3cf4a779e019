"""Pipeline conventions: our model card on every Hub upload path, the structure encoder as a kept
component whose options are saved, the per-level callback, the docstring example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline_cocosnet import CoCosNetPipeline, PipelineInterrupted
from pipeline_cocosnet.processing import EdgeEncoder, PoseEncoder, StructureError

from .conftest import random_inputs, tiny_models

ROOT = Path(__file__).resolve().parents[1]

CL = 3


def tiny_pipeline(task: str | None = None, channels: int = CL) -> CoCosNetPipeline:
    pipe = CoCosNetPipeline(*tiny_models(channels), task=task, resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace the Hub upload functions; returns what was uploaded (repo id, files, the card text)."""
    uploaded: dict = {}

    class Repo:
        def __init__(self, repo_id):
            self.repo_id = repo_id if "/" in repo_id else f"someone/{repo_id}"

    def fake_upload_folder(repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        uploaded.update(repo_id=repo_id, kwargs=kwargs)
        uploaded["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        uploaded["card"] = (folder / "README.md").read_text()

    def no_generic_card(*args, **kwargs):
        raise AssertionError("diffusers' generic model card must not be made")

    monkeypatch.setattr("huggingface_hub.create_repo", lambda repo_id, **kw: Repo(repo_id))
    monkeypatch.setattr("huggingface_hub.upload_folder", fake_upload_folder)
    monkeypatch.setattr("diffusers.pipelines.pipeline_utils.load_or_create_model_card", no_generic_card)
    monkeypatch.setattr("diffusers.pipelines.pipeline_utils.create_repo", no_generic_card)
    return uploaded


def test_save_pretrained_with_push_to_hub_uploads_our_model_card(tmp_path, fake_hub):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "cocosnet-tiny", push_to_hub=True, commit_message="first upload", private=True)
    assert fake_hub["repo_id"] == "someone/cocosnet-tiny"  # default repo: the folder's name
    assert fake_hub["kwargs"]["commit_message"] == "first upload"
    assert {"model_index.json", "README.md", "correspondence/diffusion_pytorch_model.safetensors",
            "translator/diffusion_pytorch_model.safetensors"} <= set(fake_hub["files"])  # fmt: skip
    assert "library_name: pipeline_cocosnet" in fake_hub["card"] and "| resolution | 64×64 |" in fake_hub["card"]
    assert (tmp_path / "cocosnet-tiny" / "README.md").read_text() == fake_hub["card"]


def test_save_pretrained_with_push_to_hub_takes_a_repo_id(tmp_path, fake_hub):
    tiny_pipeline().save_pretrained(tmp_path / "folder", push_to_hub=True, repo_id="org/cocosnet")
    assert fake_hub["repo_id"] == "org/cocosnet" and "library_name: pipeline_cocosnet" in fake_hub["card"]


def test_push_to_hub_uploads_weights_index_and_our_model_card(fake_hub):
    assert tiny_pipeline().push_to_hub("org/cocosnet") == "org/cocosnet"
    assert {"model_index.json", "README.md", "correspondence/diffusion_pytorch_model.safetensors",
            "translator/diffusion_pytorch_model.safetensors"} <= set(fake_hub["files"])  # fmt: skip
    assert "library_name: pipeline_cocosnet" in fake_hub["card"] and "license: other" in fake_hub["card"]


def test_a_saved_folder_loads_through_diffusers_generic_entry_point(tmp_path):
    from diffusers import DiffusionPipeline

    pipe = tiny_pipeline("pose-to-body", channels=20)
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["cocosnet_pipeline", "CoCosNetPipeline"]  # as Hub-hosted custom pipelines do
    generic = DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(generic) is CoCosNetPipeline and generic.config.task == "pose-to-body"
    assert all(torch.equal(a, b) for a, b in zip(generic.translator.state_dict().values(), pipe.translator.state_dict().values()))
    assert "trust_remote_code=True" in (tmp_path / "README.md").read_text()


def test_our_own_loader_never_runs_the_folders_module(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    (tmp_path / "cocosnet_pipeline.py").write_text("raise SystemExit('this file must not run')\n")
    assert type(CoCosNetPipeline.from_pretrained(tmp_path)) is CoCosNetPipeline


def test_the_model_card_parses_with_huggingface_hub_and_carries_the_metadata(tmp_path):
    from huggingface_hub import ModelCard

    pipe = tiny_pipeline("pose-to-body", channels=20)
    pipe.register_to_config(license="mit", origin="trained with `cocosnet train` on deepfashion data", dataset="deepfashion data",
                            base_model="someone/cocosnet-deepfashionhd")  # fmt: skip
    pipe.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "mit" and data["library_name"] == "pipeline_cocosnet"
    assert data["pipeline_tag"] == "image-to-image" and "pose-to-body" in data["tags"] and "cocosnet" in data["tags"]
    assert data["base_model"] == "someone/cocosnet-deepfashionhd"
    assert data["origin"].startswith("trained with") and data["training_data"] == "deepfashion data"
    assert "datasets" not in data  # not a Hub dataset id: only our own key says it
    assert "https://github.com/)" not in card.text and "https://arxiv.org/abs/2012.02047" in card.text
    assert "| resolution | 64×64 |" in card.text


def test_a_model_card_without_provenance_says_so():
    from pipeline_cocosnet.model_card import model_card

    card = model_card(tiny_pipeline())
    assert "base_model" not in card.data.to_dict() and "origin" not in card.data.to_dict()
    assert "| how it was made | not recorded |" in card.text and "custom-labels" in card.data.tags


# ---------------------------------------------------------------- the structure encoder as a component


def test_the_structure_encoder_is_one_kept_object():
    pipe = tiny_pipeline("edge-to-face", channels=1)
    assert pipe.structure_encoder is pipe.structure_encoder
    assert pipe.config.structure_encoder == pipe.structure_encoder.get_config()


def test_setting_an_option_on_the_encoder_takes_effect():
    pipe = tiny_pipeline("mask-to-image", channels=151)
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 3
    pipe.structure_encoder.input_format = "palette"  # an index mask is no palette image now
    with pytest.raises(StructureError, match="palette image must be H×W×3"):
        pipe(mask, np.zeros((64, 64, 3), np.uint8), mask)
    pipe.structure_encoder.input_format = "index"
    assert pipe(mask, np.zeros((64, 64, 3), np.uint8), mask, output_type="pt").images.shape == (1, 3, 64, 64)


def test_an_assigned_encoders_options_survive_save_and_load(tmp_path):
    pipe = tiny_pipeline("edge-to-face", channels=1)
    pipe.structure_encoder = EdgeEncoder(from_photos=True, dilate=True, invert=False, align_faces="dlib")
    pipe.structure_encoder.dilate = False  # set after assigning: saved too
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["structure_encoder"]["from_photos"] is True
    loaded = CoCosNetPipeline.from_pretrained(tmp_path)
    encoder = loaded.structure_encoder
    assert isinstance(encoder, EdgeEncoder)
    assert (encoder.from_photos, encoder.dilate, encoder.invert, encoder.align_faces) == (True, False, False, "dlib")


def test_an_encoder_given_to_init_or_from_pretrained_is_used(tmp_path):
    encoder = PoseEncoder(estimator="mediapipe")
    pipe = CoCosNetPipeline(*tiny_models(20), task="pose-to-body", resolution=(64, 64), structure_encoder=encoder)
    assert pipe.structure_encoder is encoder
    pipe.save_pretrained(tmp_path)
    assert CoCosNetPipeline.from_pretrained(tmp_path).structure_encoder.option("estimator") == "mediapipe"
    other = PoseEncoder()
    assert CoCosNetPipeline.from_pretrained(tmp_path, structure_encoder=other).structure_encoder is other


def test_folders_saved_before_the_encoder_option_existed_load_the_task_default(tmp_path):
    tiny_pipeline("edge-to-face", channels=1).save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    del index["structure_encoder"]
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    assert CoCosNetPipeline.from_pretrained(tmp_path).structure_encoder.get_config() == EdgeEncoder().get_config()


def test_a_mismatched_encoder_is_refused_naming_both_channel_counts():
    with pytest.raises(ValueError, match=r"EdgeEncoder \(edge-to-face\) encodes structures into 1 channels but the model takes 3"):
        tiny_pipeline().structure_encoder = EdgeEncoder()


def test_from_pipe_shares_the_components_with_another_encoder():
    pipe = tiny_pipeline("edge-to-face", channels=1)
    pipe.to(torch.float64)
    aligned = CoCosNetPipeline.from_pipe(pipe, structure_encoder={**pipe.structure_encoder.get_config(), "align_faces": True})
    assert aligned.correspondence is pipe.correspondence and aligned.translator is pipe.translator
    assert aligned.structure_encoder.align_faces is True and pipe.structure_encoder.align_faces is False
    assert pipe.correspondence.dtype == torch.float64  # from_pipe does not cast the shared components


# ---------------------------------------------------------------- per-level callback


def test_the_level_callback_sees_every_level_in_order():
    pipe = tiny_pipeline()
    label, exemplar, exemplar_label = random_inputs(2, CL, 64, 96)
    seen = []
    output = pipe(
        label, list(exemplar), exemplar_label, output_type="pt", return_warps=True,
        callback_on_level_end=lambda p, level, warp: seen.append((p, level, warp.clone())),
    )  # fmt: skip
    assert [level for _, level, _ in seen] == [0, 1, 2, 3]
    assert all(p is pipe for p, _, _ in seen)
    assert [tuple(w.shape) for _, _, w in seen] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 32, 48), (2, 3, 64, 96)]
    for (_, _, warp), returned in zip(seen, output.warps):
        torch.testing.assert_close((warp / 2 + 0.5).clamp(0, 1), returned)


def test_a_diffusers_style_callback_gets_callback_kwargs_and_may_replace_the_warp():
    pipe = tiny_pipeline()
    inputs = random_inputs(1, CL, 64, 64)
    plain = pipe(*inputs, output_type="pt", return_warps=True)
    seen = []

    def grey_finest(p, level, warp, callback_kwargs):
        seen.append((level, callback_kwargs["warp"] is warp))
        return {"warp": torch.zeros_like(warp)} if level == 3 else {}

    edited = pipe(*inputs, output_type="pt", return_warps=True, callback_on_level_end=grey_finest)
    assert seen == [(0, True), (1, True), (2, True), (3, True)]
    assert torch.equal(edited.warps[2], plain.warps[2])  # earlier levels untouched
    assert torch.equal(edited.warps[3], torch.full_like(plain.warps[3], 0.5))  # the grey warp (0 in [-1, 1])
    assert not torch.equal(edited.images, plain.images)  # and the translator used it


def test_a_callback_that_is_not_callable_is_named():
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="callback_on_level_end must be callable"):
        pipe(*random_inputs(1, CL, 64, 64), callback_on_level_end="print")


def test_setting_interrupt_in_the_callback_stops_the_call_after_that_level():
    pipe = tiny_pipeline()
    translated = []
    pipe.translator.register_forward_hook(lambda *_: translated.append(1))
    levels = []

    def stop_after_level_1(p, level, warp):
        levels.append(level)
        if level == 1:
            p._interrupt = True  # diffusers' convention

    with pytest.raises(PipelineInterrupted, match="interrupted after level 1"):
        pipe(*random_inputs(1, CL, 64, 64), callback_on_level_end=stop_after_level_1)
    assert levels == [0, 1] and not translated
    assert pipe(*random_inputs(1, CL, 64, 64), output_type="pt").images.shape == (1, 3, 64, 64)  # reset by the next call


def test_a_per_call_interrupt_check_stops_between_patchmatch_iterations():
    pipe = tiny_pipeline()
    checks = []

    def is_interrupted():
        checks.append(1)
        return len(checks) == 4  # after the encoders, level 0, then level 1's first and second PatchMatch iterations

    with pytest.raises(PipelineInterrupted, match="between PatchMatch iterations"):
        pipe(*random_inputs(1, CL, 64, 64), is_interrupted=is_interrupted)
    assert not pipe.interrupt  # a per-call check leaves the shared pipeline's flag alone


# ---------------------------------------------------------------- docstring example


def test_the_example_in_the_call_docstring_runs(monkeypatch):
    from pipeline_cocosnet.pipeline import EXAMPLE_DOC_STRING

    assert "Examples:" in CoCosNetPipeline.__call__.__doc__ and ">>> pipe = " in CoCosNetPipeline.__call__.__doc__
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository
    code = "\n".join(line.strip()[4:] for line in EXAMPLE_DOC_STRING.splitlines() if line.strip().startswith(">>> "))
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the documented example, run as written
    assert scope["sizes"] == [16, 32, 64, 128] and scope["image"].size == (128, 128)
