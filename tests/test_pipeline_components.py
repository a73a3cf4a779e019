"""Pipeline conventions: our model card on every Hub upload path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_cocosnet import CoCosNetPipeline

from .conftest import tiny_models

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

    monkeypatch.setattr("pipeline_cocosnet.pipeline.create_repo", lambda repo_id, **kw: Repo(repo_id))
    monkeypatch.setattr("pipeline_cocosnet.pipeline.upload_folder", fake_upload_folder)
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


def test_push_to_hub_uploads_our_model_card(fake_hub):
    assert tiny_pipeline().push_to_hub("org/cocosnet") == "org/cocosnet"
    assert "library_name: pipeline_cocosnet" in fake_hub["card"]
