"""The published release as users download it: convert the real packaging, reproduce the published outputs.

The release's ``latest_net_Corr.pth`` is a torch zip archive with ``latest_net_D.pth`` and
``latest_net_G.pth`` appended as foreign top-level entries (tests/release_files.py builds it
from the parity fixture's weights). ``cocosnet convert`` must read it as a subprocess, both
with ``--corr/--translator`` and ``--checkpoint-dir``; the result is checked against the
research code's outputs: exactly (within 1e-4) in float64 through the convert API and
``pipe(...)``, and on the numerically stable parts in float32 (the PatchMatch levels are not
comparable in float32 in any implementation: see README, Faithfulness).
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from pipeline_cocosnet import CoCosNetPipeline
from pipeline_cocosnet.models.attention import dense_correspondence

from .conftest import PARITY
from .release_files import assert_published_weights, write_release_checkpoints
from .test_parity import LEVELS, within


def cocosnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline_cocosnet", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference():
    return load_file(str(PARITY / "parity_outputs.safetensors"))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The release folder as downloaded, converted by `cocosnet convert` both ways: (folder, {way: output, …})."""
    root = tmp_path_factory.mktemp("release")
    folder = write_release_checkpoints(root / "checkpoints" / "deepfashionHD")
    by_files = cocosnet(
        "convert", "--corr", str(folder / "latest_net_Corr.pth"), "--translator", str(folder / "latest_net_G.pth"),
        "--output", str(root / "by_files"),
    )  # fmt: skip
    by_dir = cocosnet("convert", "--checkpoint-dir", str(folder), "--output", str(root / "by_dir"), "--variant", "fp16")
    return folder, {"files": (by_files, root / "by_files"), "dir": (by_dir, root / "by_dir")}


@pytest.mark.parametrize("way", ["files", "dir"])
def test_convert_reads_the_release_packaging_and_says_what_it_read(release, way):
    folder, results = release
    result, output = results[way]
    assert result.returncode == 0, result.stderr
    assert f"reading {folder / 'latest_net_Corr.pth'} and {folder / 'latest_net_G.pth'}" in result.stdout
    assert "ignored 2 other entries of the archive (latest_net_D.pth, latest_net_G.pth)" in result.stderr
    assert "Traceback" not in result.stderr
    assert (output / "model_index.json").is_file()


@pytest.mark.parametrize("way", ["files", "dir"])
def test_converted_folder_holds_exactly_the_published_weights(release, way):
    result, output = release[1][way]
    assert result.returncode == 0, result.stderr
    assert_published_weights(output)


def test_converted_folder_float32_stable_parts_match_the_published_outputs(release, parity_inputs, reference):
    result, output = release[1]["dir"]
    assert result.returncode == 0, result.stderr
    pipe = CoCosNetPipeline.from_pretrained(output)
    label, exemplar, exemplar_label = (x.float() for x in parity_inputs)
    with torch.no_grad():
        features = pipe.correspondence.encode(label, exemplar, exemplar_label)
        warp, _ = dense_correspondence(features.theta[0], features.phi[0], F.avg_pool2d(exemplar, 8), 0.01)
        image = pipe.translator(label, [reference[name] for name in LEVELS])
    assert within(warp, reference["warp_64"]) >= 0.999
    assert within(image, reference["fake_image"]) >= 0.999


def test_fp16_variant_round_trip(release):
    result, output = release[1]["dir"]
    assert result.returncode == 0, result.stderr
    assert (output / "translator" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    full = CoCosNetPipeline.from_pretrained(output)
    half = CoCosNetPipeline.from_pretrained(output, variant="fp16", dtype=torch.float16)
    assert half.translator.dtype == torch.float16 and full.translator.dtype == torch.float32
    for name in ("correspondence", "translator"):
        ours, theirs = getattr(half, name).state_dict(), getattr(full, name).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k].half()) for k in ours), name
    assert half.config.task == "pose-to-body" and list(half.config.resolution) == [512, 512]


def test_the_float64_run_converts_the_release_files_and_keeps_float32_outputs(published_float64_run):
    """The shared float64 run (tests/conftest.py; its outputs are checked against the published ones, within 1e-4,
    in tests/test_parity.py) read the release's .pth files, said what it ignored, and returns float32 in [0, 1]."""
    output, conversion_warnings = published_float64_run
    assert any("ignored 2 other entries" in message for message in conversion_warnings), conversion_warnings
    assert output.images.dtype == torch.float32 and 0 <= output.images.min() and output.images.max() <= 1
    assert len(output.warps) == len(LEVELS)


def test_a_float64_pipeline_builds_its_inputs_in_float64():
    from .conftest import tiny_models

    pipe64 = CoCosNetPipeline(*tiny_models(20, dtype=torch.float64), task="pose-to-body", resolution=(64, 64))
    pipe32 = CoCosNetPipeline(*tiny_models(20), task="pose-to-body", resolution=(64, 64))
    photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    keypoints = [(500.0, 200.0 + 30 * i) if i % 3 else None for i in range(18)]
    label64 = pipe64._encode_structure(keypoints, (64, 64), "structure")
    label32 = pipe32._encode_structure(keypoints, (64, 64), "structure")
    assert label64.dtype == torch.float64 and label32.dtype == torch.float32
    assert torch.equal(label64, (label32 * 255).round().double() / 255)  # k/255 computed in float64, not cast up
    assert torch.equal(pipe64._encode_structure(label64, (64, 64), "structure"), label64)  # encoded float64 kept
    from pipeline_cocosnet.processing.image_processor import CoCosNetImageProcessor

    exemplar = CoCosNetImageProcessor().preprocess(Image.fromarray(photo), (64, 64), dtype=pipe64._input_dtype)
    assert exemplar.dtype == torch.float64
    assert torch.equal(exemplar, torch.from_numpy(photo).permute(2, 0, 1).double() / 255 * 2 - 1)


def test_convert_command_errors_are_one_line(tmp_path, capsys):
    from pipeline_cocosnet.cli import main

    folder = write_release_checkpoints(tmp_path / "deepfashionHD")
    data = (folder / "latest_net_G.pth").read_bytes()
    (folder / "latest_net_G.pth").write_bytes(data[: len(data) // 2])  # an interrupted download
    cases = {
        ("--checkpoint-dir", str(folder)): r"latest_net_G\.pth: the zip archive is truncated or corrupt",
        ("--checkpoint-dir", str(folder), "--epoch", "7"): r"no 7_net_Corr\.pth \+ 7_net_G\.pth pair \(complete epochs: latest",
        ("--checkpoint-dir", str(tmp_path / "absent")): "no such folder",
        ("--checkpoint-dir", str(folder), "--corr", "x.pth"): "either --checkpoint-dir or --corr and --translator",
        ("--corr", "x.pth"): r"give --checkpoint-dir DIR .* or both --corr and --translator",
    }
    for args, message in cases.items():
        assert main(["convert", *args, "--output", str(tmp_path / "out")]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("cocosnet convert: error: "), err
        assert re.search(message, err), err
    assert not (tmp_path / "out").exists()
