"""Edge maps for edge-to-face: the one edge definition, edge-map passthrough, photo extraction."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_cocosnet.tasks import get_task
from pipeline_cocosnet.processing import (
    EdgeEncoder,
    FaceLandmarks,
    PhotoEdges,
    StructureError,
    binarize_edge_map,
    is_edge_map,
    photo_to_edges,
)
from pipeline_cocosnet.processing.encoders import edges as edges_module

PHOTOS = Path(__file__).parent / "fixtures" / "photos"


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(PHOTOS / "astronaut.jpg").convert("RGB")


def line_drawing() -> np.ndarray:
    """A float32 64×64 0/1 map with one-pixel lines: a rectangle outline and a diagonal."""
    edges = np.zeros((64, 64), np.float32)
    edges[8, 8:56] = edges[55, 8:56] = edges[8:56, 8] = edges[8:56, 55] = 1
    np.fill_diagonal(edges[16:48, 16:48], 1)
    return edges


# --------------------------------------------------------------------------- the edge definition


def test_photo_to_edges_is_the_documented_recipe(astronaut):
    grey = cv2.cvtColor(np.asarray(astronaut), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (96, 128), interpolation=cv2.INTER_AREA)  # resize first
    blurred = cv2.GaussianBlur(grey, (5, 5), 1.0)
    expected = (cv2.Canny(blurred, 50, 100, L2gradient=True) > 0).astype(np.float32)
    np.testing.assert_array_equal(photo_to_edges(astronaut, (128, 96)), expected)


def test_photo_to_edges_is_binary_and_deterministic(astronaut):
    edges = photo_to_edges(astronaut, (256, 256))
    assert edges.dtype == np.float32 and edges.shape == (256, 256)
    assert set(np.unique(edges).tolist()) == {0.0, 1.0}
    assert 0.02 < edges.mean() < 0.25  # a line drawing, not noise, not empty
    np.testing.assert_array_equal(photo_to_edges(astronaut.copy(), 256), edges)
    np.testing.assert_array_equal(photo_to_edges(np.asarray(astronaut), 256), edges)


def test_dilation_thickens_the_same_edges(astronaut):
    thin = photo_to_edges(astronaut, 128)
    thick = photo_to_edges(astronaut, 128, dilate=True)
    assert (thick >= thin).all() and thick.sum() > 1.5 * thin.sum()
    assert set(np.unique(thick).tolist()) == {0.0, 1.0}


def test_training_and_inference_share_photo_to_edges(astronaut, monkeypatch):
    encoder = EdgeEncoder()
    reference = photo_to_edges(astronaut, (64, 64))
    # a photo as structure, and an exemplar's extracted structure, both go through photo_to_edges
    assert torch.equal(encoder.encode(astronaut, (64, 64))[0], torch.from_numpy(reference))
    extracted = encoder.extract(astronaut)
    assert isinstance(extracted, PhotoEdges)
    assert torch.equal(encoder.encode(extracted, (64, 64))[0], torch.from_numpy(reference))

    calls = []

    def spy(photo, size, *, dilate=False):
        calls.append((tuple(size), dilate))
        return reference

    monkeypatch.setattr(edges_module, "photo_to_edges", spy)
    encoder.encode(astronaut, (64, 64))
    encoder.encode(encoder.extract(astronaut), (64, 64))
    EdgeEncoder(dilate=True).encode(astronaut, (64, 64))
    assert calls == [((64, 64), False), ((64, 64), False), ((64, 64), True)]


# --------------------------------------------------------------------------- edge map or photo


def test_auto_tells_edge_maps_from_photos(astronaut, tmp_path):
    drawing = (line_drawing() * 255).astype(np.uint8)
    assert is_edge_map(drawing)
    assert is_edge_map(255 - drawing)  # dark lines on white
    Image.fromarray(255 - drawing).convert("RGB").save(tmp_path / "drawing.jpg", quality=80)
    assert is_edge_map(Image.open(tmp_path / "drawing.jpg"))  # JPEG noise tolerated
    for name in ("astronaut.jpg", "grace_hopper.jpg", "morisot_self_portrait_1885.jpg"):
        assert not is_edge_map(Image.open(PHOTOS / name)), name
    assert not is_edge_map(Image.open(PHOTOS / "grace_hopper.jpg").convert("L"))  # grey photos too


def test_edge_maps_pass_through_unchanged():
    drawing = line_drawing()
    encoder = EdgeEncoder()
    for given in (
        drawing,
        drawing > 0,
        (drawing * 255).astype(np.uint8),
        Image.fromarray((drawing * 255).astype(np.uint8)),
    ):
        np.testing.assert_array_equal(encoder.encode(given, (64, 64))[0].numpy(), drawing)
    # dark lines on a light ground are inverted: edges are the minority
    np.testing.assert_array_equal(encoder.encode(1 - drawing, (64, 64))[0].numpy(), drawing)
    np.testing.assert_array_equal(EdgeEncoder(invert=False).encode(1 - drawing, (64, 64))[0].numpy(), 1 - drawing)


def test_edge_map_files_are_read(tmp_path):
    drawing = line_drawing()
    Image.fromarray(((1 - drawing) * 255).astype(np.uint8)).save(tmp_path / "edges.png")
    np.testing.assert_array_equal(EdgeEncoder().encode(tmp_path / "edges.png", (64, 64))[0].numpy(), drawing)
    with pytest.raises(StructureError, match="not found"):
        EdgeEncoder().encode(tmp_path / "missing.png", (64, 64))


def test_edge_map_threshold_is_one_half():
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(binarize_edge_map(grey, (1, 4), invert=False), [[0, 0, 1, 1]])


@pytest.mark.parametrize("factor", [2, 4, 5])
def test_shrinking_an_edge_map_keeps_one_pixel_lines(factor):
    drawing = np.zeros((60, 60), np.float32)
    drawing[:, 31] = 1  # a one-pixel vertical line
    small = binarize_edge_map(drawing, (60 // factor, 60 // factor))
    assert set(np.unique(small).tolist()) == {0.0, 1.0}
    assert small.sum(1).min() == 1 and small.sum(1).max() == 1  # still one continuous, thin line


def test_enlarging_an_edge_map_is_nearest():
    drawing = np.zeros((16, 16), np.float32)
    drawing[4, 2:14] = 1
    np.fill_diagonal(drawing, 1)
    large = binarize_edge_map(drawing, (32, 32))
    np.testing.assert_array_equal(large, drawing.repeat(2, 0).repeat(2, 1))


def test_from_photos_forces_the_reading(astronaut):
    drawing = line_drawing()
    as_photo = EdgeEncoder(from_photos=True).encode(drawing, (64, 64))[0].numpy()
    np.testing.assert_array_equal(as_photo, photo_to_edges((drawing * 255).astype(np.uint8), 64))
    assert not np.array_equal(as_photo, drawing)  # Canny finds both sides of each line
    as_map = EdgeEncoder(from_photos=False).encode(astronaut, (64, 64))[0].numpy()
    np.testing.assert_array_equal(as_map, binarize_edge_map(astronaut, 64))
    with pytest.raises(ValueError, match="from_photos"):
        EdgeEncoder(from_photos="yes")


# --------------------------------------------------------------------------- encoder


def test_the_task_s_encoder_and_channel_replication(astronaut):
    task = get_task("edge-to-face")
    assert isinstance(task.make_encoder(), EdgeEncoder)
    assert task.make_encoder().channels == 1
    encoder = task.make_encoder(label_channels=3)  # the model's label channels
    label = encoder.encode(astronaut, (32, 48))
    assert label.shape == (3, 32, 48) and label.dtype == torch.float32
    assert torch.equal(label[0], label[1]) and torch.equal(label[0], label[2])
    assert torch.equal(label[0], EdgeEncoder().encode(astronaut, (32, 48))[0])
    with pytest.raises(ValueError, match="channels"):
        EdgeEncoder(channels=0)


def test_render_shows_white_edges_on_black(astronaut):
    picture = EdgeEncoder().render(astronaut, (64, 64))
    assert picture.mode == "RGB" and picture.size == (64, 64)
    np.testing.assert_array_equal(np.asarray(picture)[..., 0] / 255, photo_to_edges(astronaut, 64))


def test_exemplar_without_alignment_is_bicubic_resized(astronaut):
    prepared = EdgeEncoder().prepare_exemplar(astronaut, (64, 48))
    assert prepared.size == (48, 64)
    np.testing.assert_array_equal(np.asarray(prepared), np.asarray(astronaut.resize((48, 64), Image.BICUBIC)))


class FixedLandmarker:
    """A stand-in backend: the astronaut's eyes and mouth corners (photo pixels), found by dlib once."""

    name = "fixed"

    def __call__(self, image):
        return FaceLandmarks((203.3, 101.5), (246.8, 103.7), (200.0, 139.0), (246.0, 141.0))


def test_aligned_exemplar_and_its_edges_line_up(astronaut):
    encoder = EdgeEncoder(align_faces=FixedLandmarker())
    exemplar = encoder.prepare_exemplar(astronaut, (64, 64))
    assert exemplar.size == (64, 64)
    structure = encoder.encode(encoder.extract(astronaut), (64, 64))[0].numpy()
    np.testing.assert_array_equal(structure, photo_to_edges(exemplar, 64))
    assert not np.array_equal(structure, photo_to_edges(astronaut, 64))  # aligned, not just resized
    with pytest.raises(StructureError, match="square"):
        encoder.encode(astronaut, (64, 48))


def test_bad_inputs_are_named():
    with pytest.raises(StructureError, match=r"\[0, 1\]"):
        EdgeEncoder().encode(np.full((4, 4), 2.0), (4, 4))
    with pytest.raises(StructureError, match="H×W"):
        EdgeEncoder().encode(np.zeros((2, 4, 4, 3), np.uint8), (4, 4))
