"""ADE20k masks → the 151-channel mask-to-image label (index masks, palette images, legend)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.tasks import get_task
from pipeline_cocosnet.processing import (
    ADE20K_CLASSES,
    ADE20K_LABEL_CHANNELS,
    ADE20K_PALETTE,
    ADE20KMaskEncoder,
    StructureError,
    class_legend,
    load_ade20k_mask,
    mask_to_palette,
    palette_to_mask,
)

ROAD, SKYSCRAPER = 7, 49  # the two classes that share a palette colour


def all_classes_mask() -> np.ndarray:
    """A 4×151 mask holding every index 0..150 (one column each)."""
    return np.tile(np.arange(151, dtype=np.uint8), (4, 1))


def blocks_mask() -> np.ndarray:
    """A 20×30 mask of 2×3 blocks of classes 0, 3 (sky), 13 (person), 150 (flag), 7 (road), 21 (car)."""
    return np.kron(np.array([[0, 3, 13], [150, 7, 21]], np.uint8), np.ones((10, 10), np.uint8))


# --------------------------------------------------------------------------- constants


def test_palette_and_classes_are_the_standard_150():
    assert len(ADE20K_CLASSES) == len(ADE20K_PALETTE) == 150
    assert ADE20K_CLASSES[:4] == ("wall", "building", "sky", "floor")
    assert ADE20K_CLASSES[-1] == "flag" and ADE20K_CLASSES[ROAD - 1] == "road"
    assert ADE20K_PALETTE[0] == (120, 120, 120) and ADE20K_PALETTE[-1] == (92, 0, 255)
    assert all(name == name.strip() for name in ADE20K_CLASSES)
    # the standard palette's one duplicate: road and skyscraper
    assert ADE20K_PALETTE[ROAD - 1] == ADE20K_PALETTE[SKYSCRAPER - 1] == (140, 140, 140)
    assert len(set(ADE20K_PALETTE)) == 149 and (0, 0, 0) not in ADE20K_PALETTE


def test_the_task_s_encoder_has_151_channels():
    encoder = get_task("mask-to-image").make_encoder()
    assert isinstance(encoder, ADE20KMaskEncoder)
    assert encoder.channels == ADE20K_LABEL_CHANNELS == 151


# --------------------------------------------------------------------------- round trips


def test_index_palette_round_trip_is_exact_except_skyscraper():
    mask = all_classes_mask()
    picture = mask_to_palette(mask)
    assert picture.mode == "RGB" and picture.size == (151, 4)
    assert np.asarray(picture)[0, 0].tolist() == [0, 0, 0]
    assert tuple(np.asarray(picture)[0, 150]) == ADE20K_PALETTE[149]
    back = palette_to_mask(picture)
    expected = mask.copy()
    expected[expected == SKYSCRAPER] = ROAD  # the shared colour is read as road
    np.testing.assert_array_equal(back, expected)


def test_palette_image_and_index_mask_encode_identically():
    encoder = ADE20KMaskEncoder()
    mask = blocks_mask()
    from_index = encoder.encode(Image.fromarray(mask, "L"), (20, 30))
    from_palette = encoder.encode(mask_to_palette(mask), (20, 30))
    assert torch.equal(from_index, from_palette)


def test_files_are_read(tmp_path):
    mask = blocks_mask()
    Image.fromarray(mask, "L").save(tmp_path / "index.png")
    mask_to_palette(mask).save(tmp_path / "palette.png")
    np.testing.assert_array_equal(load_ade20k_mask(tmp_path / "index.png"), mask)
    np.testing.assert_array_equal(load_ade20k_mask(str(tmp_path / "palette.png")), mask)
    with pytest.raises(StructureError, match="not found"):
        load_ade20k_mask(tmp_path / "missing.png")


# --------------------------------------------------------------------------- one-hot


def test_one_hot_has_a_single_one_at_the_class_channel():
    mask = blocks_mask()
    label = ADE20KMaskEncoder().encode(mask, (20, 30))
    assert label.dtype == torch.float32 and label.shape == (151, 20, 30)
    assert torch.equal(label.sum(0), torch.ones(20, 30))
    assert torch.equal(label.argmax(0), torch.from_numpy(mask).long())
    assert set(label.unique().tolist()) == {0.0, 1.0}
    assert label[0, 0, 0] == 1  # unknown → channel 0
    assert label[150, 15, 5] == 1  # flag → channel 150


@pytest.mark.parametrize(
    "as_input",
    [
        pytest.param(lambda m: m, id="uint8 array"),
        pytest.param(lambda m: m.astype(np.int64), id="int64 array"),
        pytest.param(lambda m: torch.from_numpy(m).long(), id="tensor"),
        pytest.param(lambda m: Image.fromarray(m, "L"), id="PIL L"),
        pytest.param(lambda m: Image.fromarray(m.astype(np.int32), "I"), id="PIL I"),
        pytest.param(lambda m: Image.fromarray(np.stack([m] * 3, -1)), id="grey RGB index mask"),
        pytest.param(lambda m: mask_to_palette(m).convert("RGBA"), id="RGBA palette"),
    ],
)
def test_every_input_form_gives_the_same_label(as_input):
    mask = blocks_mask()
    expected = ADE20KMaskEncoder().encode(mask, (20, 30))
    assert torch.equal(ADE20KMaskEncoder().encode(as_input(mask), (20, 30)), expected)


def test_p_mode_images_are_read_by_index():
    mask = blocks_mask()
    indexed = Image.fromarray(mask, "L").convert("P")
    indexed.putpalette([255, 0, 0] * 256)  # colours are ignored for P images
    np.testing.assert_array_equal(load_ade20k_mask(indexed), mask)


# --------------------------------------------------------------------------- resizing


@pytest.mark.parametrize("size", [(40, 60), (10, 15), (7, 11)])
def test_resizing_is_nearest_and_keeps_classes(size):
    mask = blocks_mask()
    label = ADE20KMaskEncoder().encode(mask, size)
    assert label.shape == (151, *size)
    assert torch.equal(label.sum(0), torch.ones(size))  # still one-hot: no blending
    present = set(label.argmax(0).unique().tolist())
    assert present == {0, 3, 13, 150, 7, 21}
    expected = np.asarray(Image.fromarray(mask).resize(size[::-1], Image.NEAREST))
    np.testing.assert_array_equal(label.argmax(0).numpy(), expected)


def test_render_draws_palette_colours_at_size():
    mask = blocks_mask()
    picture = ADE20KMaskEncoder().render(mask, (40, 60))
    assert picture.size == (60, 40) and picture.mode == "RGB"
    colours = {tuple(c) for c in np.asarray(picture).reshape(-1, 3)}
    assert colours == {(0, 0, 0), *(ADE20K_PALETTE[k - 1] for k in (3, 13, 150, 7, 21))}


# --------------------------------------------------------------------------- errors


def test_unknown_palette_colours_are_reported():
    picture = np.asarray(mask_to_palette(blocks_mask())).copy()
    picture[0, :7] = (1, 2, 3)
    picture[1, :2] = (250, 250, 250)
    with pytest.raises(StructureError) as error:
        ADE20KMaskEncoder().encode(picture, (20, 30))
    message = str(error.value)
    assert "9 of 600 pixels" in message and "2 colours" in message
    assert "(1, 2, 3) ×7" in message and "(250, 250, 250) ×2" in message


def test_jpeg_palette_images_are_rejected_with_a_hint(tmp_path):
    mask_to_palette(blocks_mask()).save(tmp_path / "palette.jpg", quality=75)
    with pytest.raises(StructureError, match="not ADE20k palette colours.*PNG"):
        load_ade20k_mask(tmp_path / "palette.jpg")


@pytest.mark.parametrize("bad", [151, 255])
def test_out_of_range_indices_are_rejected(bad):
    mask = blocks_mask()
    mask[:2, :2] = bad
    with pytest.raises(StructureError, match=rf"outside 0\.\.150 \(min 0, max {bad}; 4 pixels\)"):
        ADE20KMaskEncoder().encode(mask, (20, 30))


def test_negative_and_fractional_indices_are_rejected():
    with pytest.raises(StructureError, match="outside 0..150"):
        load_ade20k_mask(np.full((2, 2), -1))
    with pytest.raises(StructureError, match="non-integer"):
        load_ade20k_mask(np.full((2, 2), 1.5))


def test_extract_segments_with_the_given_segmenter_and_checks_its_output():
    mask = np.arange(48, dtype=np.uint8).reshape(6, 8)
    assert (ADE20KMaskEncoder(segmenter=lambda photo: mask).extract(Image.new("RGB", (8, 6))) == mask).all()
    with pytest.raises(StructureError, match="outside 0..150"):
        ADE20KMaskEncoder(segmenter=lambda photo: mask + 200).extract(Image.new("RGB", (8, 6)))


# --------------------------------------------------------------------------- palette vs index


def test_grey_rgb_of_palette_greys_reads_as_palette_else_as_indices():
    wall, windowpane = ADE20K_PALETTE[0], ADE20K_PALETTE[8]  # (120,)*3 and (230,)*3
    palette_like = np.array([[wall, windowpane]], np.uint8)
    np.testing.assert_array_equal(load_ade20k_mask(palette_like), [[1, 9]])
    index_like = np.array([[(5, 5, 5), (120, 120, 120)]], np.uint8)
    np.testing.assert_array_equal(load_ade20k_mask(index_like), [[5, 120]])


def test_input_format_can_be_forced():
    palette_like = np.array([[(120, 120, 120), (140, 140, 140)]], np.uint8)
    np.testing.assert_array_equal(ADE20KMaskEncoder("index").index_mask(palette_like), [[120, 140]])
    np.testing.assert_array_equal(ADE20KMaskEncoder("palette").index_mask(palette_like), [[1, 7]])
    # an L image forced to palette is read by its grey colours
    grey = Image.fromarray(np.array([[0, 120]], np.uint8), "L")
    np.testing.assert_array_equal(ADE20KMaskEncoder("palette").index_mask(grey), [[0, 1]])
    with pytest.raises(StructureError, match="colour image"):
        ADE20KMaskEncoder("index").index_mask(mask_to_palette(blocks_mask()))
    with pytest.raises(ValueError, match="input_format"):
        ADE20KMaskEncoder("rgb")


# --------------------------------------------------------------------------- legend


def test_class_legend():
    legend = class_legend()
    assert len(legend) == 150
    assert legend[0] == (1, "wall", (120, 120, 120)) and legend[-1] == (150, "flag", (92, 0, 255))
    assert class_legend(blocks_mask()) == [
        (0, "unknown", (0, 0, 0)),
        (3, "sky", ADE20K_PALETTE[2]),
        (7, "road", (140, 140, 140)),
        (13, "person", ADE20K_PALETTE[12]),
        (21, "car", ADE20K_PALETTE[20]),
        (150, "flag", (92, 0, 255)),
    ]
    assert [i for i, _, _ in class_legend({13, 2})] == [2, 13]
