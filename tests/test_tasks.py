"""The task registry (pipeline_cocosnet/tasks/): one object per task, and no task names anywhere else in the code."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from pipeline_cocosnet.processing.encoders import ADE20KMaskEncoder, EdgeEncoder, PoseEncoder, StructureEncoder
from pipeline_cocosnet.processing.formats.ade20k import ADE20K_PALETTE
from pipeline_cocosnet.tasks import MODEL_TASKS, RESEARCH_TASK, TASKS, get_task, task_for_data
from pipeline_cocosnet.training.data import DATASETS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "pipeline_cocosnet"
KINDS = {"ade20k-editor", "image", "photo", "index-mask", "keypoints", "checkbox"}


def test_the_registry_lists_four_tasks_and_three_models():
    assert list(TASKS) == ["mask-to-image", "edge-to-face", "pose-to-body", "oil-portrait"]  # the demo's tab order
    assert MODEL_TASKS == ("mask-to-image", "edge-to-face", "pose-to-body")
    assert RESEARCH_TASK == "pose-to-body"  # the one published checkpoint
    with pytest.raises(ValueError, match="unknown task 'oil-portrait'; known tasks: mask-to-image, edge-to-face, pose-to-body"):
        get_task("oil-portrait", model=True)


@pytest.mark.parametrize("name", MODEL_TASKS)
def test_a_model_task_s_encoder_is_saved_under_its_name(name):
    task = get_task(name)
    encoder = task.make_encoder()
    assert encoder.task == name and encoder.get_config()["task"] == name


def test_oil_portrait_is_edge_to_face_with_a_photo_and_alignment():
    oil, edges = get_task("oil-portrait"), get_task("edge-to-face")
    assert oil.model_task == "edge-to-face" and not oil.is_model_task
    assert oil.encoder_class is edges.encoder_class is EdgeEncoder and oil.training == edges.training
    assert oil.make_encoder(1).align_faces is True and edges.make_encoder(1).align_faces is False
    assert oil.weights.shared_with == "edge-to-face"
    assert [(i.kind, i.role) for i in oil.tab.inputs] == [("photo", "structure"), ("photo", "exemplar")]


def test_the_model_s_channel_count_reaches_encoders_that_take_one():
    assert get_task("edge-to-face").make_encoder(3).channels == 3  # an option of the edge encoder
    assert get_task("mask-to-image").make_encoder(151).channels == 151  # fixed by the format: not an option


@pytest.mark.parametrize("name", TASKS)
def test_every_tab_is_well_formed(name):
    tab = get_task(name).tab
    names = [item.name for item in tab.inputs]
    assert len(set(names)) == len(names)
    assert len(tab.by_role("exemplar")) == 1 and tab.by_role("structure") and len(tab.by_role("exemplar_structure")) <= 1
    assert {item.kind for item in tab.inputs} <= KINDS
    assert all(item.doc and item.label for item in tab.inputs)
    assert not tab.is_optional(tab.by_role("structure")[0]) and not tab.is_optional(tab.by_role("exemplar")[0])
    assert all(tab.is_optional(item) for item in tab.by_role("structure")[1:] + tab.by_role("exemplar_structure"))


@pytest.mark.parametrize("name", TASKS)
def test_every_task_has_examples_and_a_way_to_get_weights(name):
    task = get_task(name)
    manifest = json.loads((ROOT / "examples" / name / "examples.json").read_text())
    assert manifest.get("examples") or manifest.get("gallery")
    assert task.weights.how_to_get
    if task.training.config:
        assert (ROOT / task.training.config).is_file()


def test_training_readers_know_their_task():
    assert {kind: (task_for_data(kind).name if task_for_data(kind) else None) for kind in DATASETS} == {
        "deepfashionhd": "pose-to-body", "ade20k": "mask-to-image", "edges": "edge-to-face", "scenes": "mask-to-image",
        "paired": None, "synthetic": None,
    }  # fmt: skip


def test_one_pose_s_keypoints_are_one_item_not_a_batch():
    assert PoseEncoder.is_single([(10.0, 20.0), None, (30, 40)])
    assert not PoseEncoder.is_single([None, None]) and not PoseEncoder.is_single(["a.json", "b.json"])
    assert not StructureEncoder.is_single([(10.0, 20.0)])  # other encoders: a list is a batch


def test_label_pictures_for_training_grids():
    mask = torch.zeros(1, 151, 2, 2)
    mask[0, 3, 0, 0] = mask[0, 0, 1, 1] = mask[0, 0, 0, 1] = mask[0, 0, 1, 0] = 1
    picture = ADE20KMaskEncoder.label_picture(mask)
    assert picture.shape == (1, 3, 2, 2)
    assert torch.allclose(picture[0, :, 0, 0] * 255, torch.tensor(ADE20K_PALETTE[2], dtype=torch.float32)) and picture[0, :, 1, 1].eq(0).all()
    pose = torch.rand(2, 20, 4, 4)
    assert torch.equal(PoseEncoder.label_picture(pose), pose[:, :3])
    grey = torch.rand(1, 1, 3, 3)
    assert torch.equal(StructureEncoder.label_picture(grey), grey.expand(-1, 3, -1, -1))
    one_hot = torch.nn.functional.one_hot(torch.tensor([[0, 5], [7, 5]]), 9).permute(2, 0, 1)[None].float()
    classes = StructureEncoder.label_picture(one_hot)
    assert classes[0, :, 0, 0].eq(0).all() and torch.equal(classes[0, :, 0, 1], classes[0, :, 1, 1])
    assert not torch.equal(classes[0, :, 0, 1], classes[0, :, 1, 0]) and ((classes >= 0) & (classes <= 1)).all()


# ------------------------------------------------------------------ no task names outside the registry

#: string literals that may name a task outside tasks/: each encoder's saved identity (``task = "…"``,
#: the key of ``config.structure_encoder``; processing/ sits below tasks/ and cannot import it)
ALLOWED = {
    ("pipeline.py", "mask-to-image"),  # EXAMPLE_DOC_STRING (the pipeline's docstring example) opens examples/mask-to-image/
    ("processing/encoders/pose.py", "pose-to-body"),
    ("processing/encoders/mask.py", "mask-to-image"),
    ("processing/encoders/edges.py", "edge-to-face"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def task_names_in_code(path: Path) -> set[str]:
    """Task names (with - or _) in the string literals of ``path``'s code, docstrings excepted."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            names |= {t for t in TASKS if t in node.value or t.replace("-", "_") in node.value}
    return names


def test_the_scanner_sees_code_and_skips_docstrings(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('"""pose-to-body docs."""\ndef f():\n    """edge-to-face."""\n    return f"{1}oil_portrait" + "mask-to-image"\n')
    assert task_names_in_code(path) == {"oil-portrait", "mask-to-image"}


def test_task_names_appear_only_in_the_registry():
    found = {
        (str(path.relative_to(PACKAGE_DIR)), name)
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if not path.relative_to(PACKAGE_DIR).parts[0] == "tasks"
        for name in task_names_in_code(path)
    }
    assert found - ALLOWED == set(), "task names in code outside pipeline_cocosnet/tasks/ (docstrings aside)"
