"""CoCosNetImageProcessor: the one place photos, arrays and tensors become model images and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.processing.image_processor import CoCosNetImageProcessor
from pipeline_cocosnet.processing.images import ImageError

PIXELS = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)


@pytest.fixture
def processor():
    return CoCosNetImageProcessor()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_photos_scale_to_minus_one_one(processor, dtype):
    expected = torch.from_numpy(PIXELS.astype(np.float64) / 255 * 2 - 1).permute(2, 0, 1).to(dtype)
    for image in (PIXELS, Image.fromarray(PIXELS)):
        out = processor.preprocess(image, dtype=dtype)
        assert out.dtype == dtype and out.shape == (3, 6, 10)
        torch.testing.assert_close(out, expected, atol=0 if dtype == torch.float64 else 1e-7, rtol=0)


def test_the_scaling_is_bitwise_the_training_readers_formula(processor):
    # the training readers computed x/127.5 − 1 in float32; x/255·2 − 1 is the same float
    all_values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    old = torch.from_numpy(all_values.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1
    assert torch.equal(processor.photo_to_tensor(Image.fromarray(all_values)), old)


def test_photos_are_resized_or_prepared_to_the_working_size(processor):
    out = processor.preprocess(PIXELS, (8, 4))
    expected = np.asarray(Image.fromarray(PIXELS).resize((4, 8), Image.BICUBIC))
    assert torch.equal(out, processor.photo_to_tensor(Image.fromarray(expected)))
    grey = processor.preprocess(PIXELS, (4, 4), prepare=lambda photo, size: Image.new("RGB", (size[1], size[0]), (255,) * 3))
    assert torch.equal(grey, torch.ones(3, 4, 4))


def test_tensors_in_range_pass_through_and_resize_bilinearly(processor):
    tensor = torch.rand(3, 8, 8) * 2 - 1
    assert torch.equal(processor.preprocess(tensor), tensor)
    assert processor.preprocess(tensor, (16, 16)).shape == (3, 16, 16)


@pytest.mark.parametrize(
    "image, message",
    [
        (torch.zeros(3, 4, 4, dtype=torch.uint8), "uint8 tensors are ambiguous"),
        (torch.zeros(1, 4, 4), r"must be 3×H×W"),
        (torch.full((3, 4, 4), 2.0), r"values must lie in \[-1, 1\]"),
        (np.zeros((4, 4), np.uint8), "must be H×W×3"),
        (42, "expected a PIL image"),
    ],
)
def test_bad_images_are_named(processor, image, message):
    with pytest.raises(ImageError, match=message):
        processor.preprocess(image, (4, 4), what="exemplar")


def test_postprocess_output_types(processor):
    images = torch.linspace(-1, 1, 2 * 3 * 4 * 5).view(2, 3, 4, 5)
    pt = processor.postprocess(images, "pt")
    assert pt.shape == (2, 3, 4, 5) and pt.min() == 0 and pt.max() == 1
    assert processor.postprocess(images, "np").shape == (2, 4, 5, 3)
    pil = processor.postprocess(images, "pil", size=(8, 10))
    assert [p.size for p in pil] == [(10, 8), (10, 8)]
    with pytest.raises(ValueError, match="output_type must be one of"):
        processor.postprocess(images, "jpeg")


def test_to_photo_round_trips_a_model_image(processor):
    tensor = processor.preprocess(PIXELS)
    np.testing.assert_array_equal(np.asarray(processor.to_photo(tensor)), PIXELS)
