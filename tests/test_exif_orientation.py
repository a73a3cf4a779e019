"""Phone photos are stored sideways with an EXIF orientation tag: every reader shows them upright.

The fixture is a 48×32 (w×h) photo stored as its upright 32×48 portrait turned a quarter, tagged
orientation 6 (viewers turn it back): the upright image is red on top and blue below.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.processing.image_processor import CoCosNetImageProcessor
from pipeline_cocosnet.processing.images import image_file_size, open_image
from pipeline_cocosnet.training.data.base import read_rgb

ORIENTATION = 0x0112


@pytest.fixture
def sideways_photo(tmp_path: Path) -> Path:
    upright = np.zeros((48, 32, 3), dtype=np.uint8)  # h×w: a portrait
    upright[:24, :, 0] = 255  # red top half
    upright[24:, :, 2] = 255  # blue bottom half
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # orientation 6: viewers turn it 90° clockwise
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=95)
    with Image.open(path) as raw:
        assert raw.size == (48, 32) and raw.getexif()[ORIENTATION] == 6  # really stored sideways
    return path


def is_upright_red_over_blue(rgb: np.ndarray) -> bool:
    top, bottom = rgb[: rgb.shape[0] // 4].mean((0, 1)), rgb[-rgb.shape[0] // 4 :].mean((0, 1))
    return top[0] > 200 > top[2] + 150 and bottom[2] > 200 > bottom[0] + 150


def test_open_image_and_its_header_size_are_upright(sideways_photo):
    image = open_image(sideways_photo)
    assert image.size == (32, 48)
    assert image_file_size(sideways_photo) == (32, 48)  # the sides swap before anything is decoded
    assert is_upright_red_over_blue(np.asarray(image.convert("RGB")))


def test_a_pil_image_carrying_the_tag_is_turned_too(sideways_photo):
    with Image.open(sideways_photo) as raw:
        assert open_image(raw).size == (32, 48)


def test_the_pipeline_reads_an_exemplar_upright(sideways_photo):
    # pipe(...) converts every photo with its image processor (pipeline.image_processor)
    tensor = CoCosNetImageProcessor().preprocess(str(sideways_photo), (64, 64))
    rgb = ((tensor.permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    assert is_upright_red_over_blue(rgb)


def test_the_training_reader_reads_a_photo_upright(sideways_photo):
    image = read_rgb(sideways_photo)
    assert image.size == (32, 48) and is_upright_red_over_blue(np.asarray(image))


def test_the_cli_sizes_its_output_by_the_upright_structure(tmp_path):
    # a mask saved as phones save photos: stored turned a quarter, tagged orientation 6
    examples = Path(__file__).parents[1] / "examples" / "mask-to-image"
    with Image.open(examples / "scene_5006_mask.png") as mask:
        upright_mask = mask.crop((0, 0, 96, 128))  # w×h 96×128: a portrait
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    structure = tmp_path / "mask.png"
    upright_mask.transpose(Image.Transpose.ROTATE_90).save(structure, exif=exif)
    out = tmp_path / "result.png"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_cocosnet", "translate", "--model", "demo", "--structure", str(structure),
         "--exemplar", str(examples / "scene_5012.png"), "--exemplar-structure", str(examples / "scene_5012_mask.png"),
         "--out", str(out), "--match-input-size", "--quiet", "--dtype", "float32"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (96, 128)
