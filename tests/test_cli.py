"""The ``cocosnet`` entry point, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator

from .conftest import FIXTURES, PARITY

POSES = FIXTURES / "pose"
ROOT = Path(__file__).resolve().parents[1]


def cocosnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline_cocosnet", *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_help_lists_the_commands():
    result = cocosnet("--help")
    assert result.returncode == 0
    assert "convert" in result.stdout


def test_convert_writes_loadable_components(tmp_path):
    result = cocosnet(
        "convert",
        "--corr", str(PARITY / "official_Corr.safetensors"),
        "--translator", str(PARITY / "official_G.safetensors"),
        "--output", str(tmp_path / "model"),
        "--ngf", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "nef 8, ngf 8" in result.stdout
    assert CoCosNetCorrespondence.from_pretrained(tmp_path / "model", subfolder="correspondence").config.nef == 8
    assert CoCosNetTranslator.from_pretrained(tmp_path / "model", subfolder="translator").config.ngf == 8
    assert (tmp_path / "model" / "model_index.json").is_file()


def test_convert_errors_are_one_clear_line(tmp_path):
    result = cocosnet(
        "convert", "--corr", str(tmp_path / "missing.pth"), "--translator", str(PARITY / "official_G.safetensors"),
        "--output", str(tmp_path / "model"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "checkpoint not found" in result.stderr and "Traceback" not in result.stderr


def converted_model(tmp_path):
    result = cocosnet(
        "convert", "--corr", str(PARITY / "official_Corr.safetensors"),
        "--translator", str(PARITY / "official_G.safetensors"), "--output", str(tmp_path / "model"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return tmp_path / "model"


def test_translate_with_the_converted_checkpoint(tmp_path):
    model = converted_model(tmp_path)
    exemplar = tmp_path / "exemplar.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 80, 3), dtype=np.uint8)).save(exemplar)
    result = cocosnet(
        "translate", "--model", str(model), "--structure", str(POSES / "full_candidate.txt"),
        "--exemplar", str(exemplar), "--exemplar-structure", str(POSES / "jittered_candidate.txt"),
        "--out", str(tmp_path / "out" / "result.png"), "--height", "256", "--width", "256",
        "--warps-dir", str(tmp_path / "warps"), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out" / "result.png").size == (256, 256)
    assert sorted(p.name for p in (tmp_path / "warps").iterdir()) == [
        "warp_128x128.png", "warp_256x256.png", "warp_32x32.png", "warp_64x64.png"
    ]  # fmt: skip


def test_translate_reports_bad_input_without_a_traceback(tmp_path):
    model = converted_model(tmp_path)
    Image.new("RGB", (32, 48)).save(tmp_path / "exemplar.png")
    result = cocosnet(
        "translate", "--model", str(model), "--structure", str(POSES / "full_candidate.txt"),
        "--exemplar", str(tmp_path / "exemplar.png"), "--exemplar-structure", str(POSES / "full_candidate.txt"),
        "--out", str(tmp_path / "result.png"), "--height", "100",
    )  # fmt: skip
    assert result.returncode == 2
    assert "size 100×512 is not supported" in result.stderr and "Traceback" not in result.stderr
    assert "running in " in result.stderr  # the CLI says which precision it runs (--dtype auto)


def test_push_uploads_the_folder_as_it_is_variants_included(tmp_path):
    result = cocosnet(
        "convert", "--corr", str(PARITY / "official_Corr.safetensors"), "--translator", str(PARITY / "official_G.safetensors"),
        "--output", str(tmp_path / "model"), "--variant", "fp16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stub = (  # the Hub replaced by a recorder: what would be uploaded, file by file
        "import sys, pathlib, fnmatch, huggingface_hub as h\n"
        "class Repo: repo_id = 'someone/cocosnet'\n"
        "h.create_repo = lambda repo_id, **kw: Repo()\n"
        "def upload(repo_id, folder_path, ignore_patterns=(), **kw):\n"
        "    root = pathlib.Path(folder_path)\n"
        "    files = [p.relative_to(root).as_posix() for p in root.rglob('*') if p.is_file()]\n"
        "    print('UPLOADED', repo_id, sorted(f for f in files if not any(fnmatch.fnmatch(f, g) for g in ignore_patterns)))\n"
        "h.upload_folder = upload\n"
        "from pipeline_cocosnet.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", stub, "push", str(tmp_path / "model"), "someone/cocosnet"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    uploaded = [
        "README.md", "cocosnet_pipeline.py", "correspondence/config.json", "correspondence/diffusion_pytorch_model.fp16.safetensors",
        "correspondence/diffusion_pytorch_model.safetensors", "model_index.json", "translator/config.json",
        "translator/diffusion_pytorch_model.fp16.safetensors", "translator/diffusion_pytorch_model.safetensors",
    ]  # fmt: skip
    assert f"UPLOADED someone/cocosnet {uploaded}" in result.stdout


def test_push_offline_fails_clearly(tmp_path):
    model = converted_model(tmp_path)
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_cocosnet", "push", str(model), "someone/cocosnet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "offline" in result.stderr.lower()


def test_help_imports_neither_torch_nor_diffusers():
    code = (
        "import sys\n"
        "from pipeline_cocosnet.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'numba', 'gradio') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # `cocosnet --help` starts in a few hundredths of a second


def test_a_missing_input_file_is_reported_before_any_model_loads(tmp_path):
    exemplar = tmp_path / "exemplar.png"
    Image.new("RGB", (8, 8)).save(exemplar)
    result = cocosnet(  # the model does not exist either: the input is checked first
        "translate", "--model", str(tmp_path / "no-model"), "--structure", str(tmp_path / "pose.json"),
        "--exemplar", str(exemplar), "--out", str(tmp_path / "out.png"),
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip() == f"cocosnet translate: error: no such structure file: {tmp_path / 'pose.json'}"


def test_translate_takes_release_names_and_research_checkpoint_folders(tmp_path):
    from .release_files import write_release_checkpoints

    pose = ROOT / "examples" / "pose-to-body"
    inputs = ("--structure", str(pose / "standing.json"), "--exemplar", str(pose / "mannequin_waving.png"),
              "--exemplar-structure", str(pose / "waving.json"), "--quiet", "--height", "64", "--width", "64")  # fmt: skip
    env = {"COCOSNET_CACHE": str(tmp_path / "cache"), "COCOSNET_RELEASE_URL_DEEPFASHIONHD": "http://127.0.0.1:9/release.zip"}
    offline = cocosnet("translate", "--model", "release:deepfashionhd", *inputs, "--out", str(tmp_path / "a.png"), env=env)
    assert offline.returncode == 2 and offline.stderr.count("\n") == 1 and "Traceback" not in offline.stderr
    assert "cannot download http://127.0.0.1:9/release.zip" in offline.stderr and "--archive FILE.zip" in offline.stderr
    folder = write_release_checkpoints(tmp_path / "checkpoints" / "deepfashionHD")
    converted = cocosnet("translate", "--model", str(folder), *inputs, "--out", str(tmp_path / "b.png"), env=env)
    assert converted.returncode == 0, converted.stderr
    assert Image.open(tmp_path / "b.png").size == (64, 64) and list((tmp_path / "cache" / "converted").iterdir())
