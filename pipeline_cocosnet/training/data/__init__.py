"""Training data readers (one per layout) and the procedural generators (shapes, landscape scenes)."""

from __future__ import annotations

from ..config import DataConfig
from .ade20k import ADE20kDataset
from .base import PairedDataset, SampleError, read_pair_list
from .deepfashion import DeepFashionHDDataset
from .edges import EdgeFolderDataset
from .paired import PairedFolderDataset
from .scenes import SCENE_CLASSES, ScenesDataset, make_scene as make_landscape, transformed_pair, write_scenes_folder
from .synthetic import SyntheticShapesDataset, make_scene, write_synthetic_folder

__all__ = [
    "DATASETS",
    "build_dataset",
    "PairedDataset",
    "SampleError",
    "read_pair_list",
    "ADE20kDataset",
    "DeepFashionHDDataset",
    "EdgeFolderDataset",
    "PairedFolderDataset",
    "SyntheticShapesDataset",
    "ScenesDataset",
    "SCENE_CLASSES",
    "make_landscape",
    "transformed_pair",
    "write_scenes_folder",
    "make_scene",
    "write_synthetic_folder",
]

DATASETS: dict[str, type[PairedDataset]] = {
    "deepfashionhd": DeepFashionHDDataset,
    "ade20k": ADE20kDataset,
    "edges": EdgeFolderDataset,
    "paired": PairedFolderDataset,
    "synthetic": SyntheticShapesDataset,
    "scenes": ScenesDataset,
}


def build_dataset(config: DataConfig, label_channels: int) -> PairedDataset:
    """The reader named by ``config.kind``."""
    try:
        cls = DATASETS[config.kind.lower()]
    except KeyError:
        raise ValueError(f"unknown data.kind {config.kind!r}; known: {', '.join(DATASETS)}") from None
    return cls(config, label_channels)
