"""DeepFashionHD (pose-to-body), laid out as the research code expects::

    ROOT/img/WOMEN/…/ID/01_1_front.jpg           photos (750×1101, or already square)
    ROOT/pose/WOMEN/…/ID/01_1_front_candidate.txt  OpenPose keypoints (docs/architecture.md §10)
    ROOT/pose/WOMEN/…/ID/01_1_front_subset.txt

Keys are image paths relative to ROOT (``img/…jpg``), as in ``train.txt`` and the pair
lists ``deepfashion_self_pair.txt`` (same person, other pose: same-content exemplars) and
``deepfashion_ref.txt`` (retrieved exemplars). Photos are padded to a square with grey 232
and resized, labels rendered by :func:`~pipeline_cocosnet.processing.formats.keypoints.render_pose_label`:
exactly what the inference pipeline does.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...processing.formats.keypoints import POSE_LABEL_CHANNELS, load_openpose_keypoints, prepare_exemplar_photo, render_pose_label
from .base import IMAGE_SUFFIXES, PairedDataset, SampleError, _normalise_key, image_to_tensor, read_rgb

__all__ = ["DeepFashionHDDataset", "pose_files"]


def pose_files(root: Path, key: str) -> tuple[Path, Path]:
    """The (candidate, subset) keypoint files of image ``key`` (``img/…/x.jpg`` → ``pose/…/x_candidate.txt``)."""
    parts = Path(key).parts
    if not parts or parts[0] != "img":
        raise SampleError(f"DeepFashionHD image key {key!r} must start with img/ (relative to the dataset root)")
    stem = Path("pose", *parts[1:]).with_suffix("")
    return root / f"{stem}_candidate.txt", root / f"{stem}_subset.txt"


class DeepFashionHDDataset(PairedDataset):
    """DeepFashionHD photos + OpenPose keypoints → 20-channel pose labels (square sizes only)."""

    def discover(self) -> list[str]:
        if self.root is None or not (self.root / "img").is_dir():
            raise SampleError(f"DeepFashionHD root must contain img/ and pose/ folders, got {self.root}")
        if self.label_channels != POSE_LABEL_CHANNELS:
            raise ValueError(f"DeepFashionHD labels have {POSE_LABEL_CHANNELS} channels; set model.label_channels: 20")
        if self.size[0] != self.size[1]:
            raise ValueError(f"DeepFashionHD pose labels are square; data.size is {self.size}")
        if self.config.list_file:
            path = Path(self.config.list_file)
            if not path.is_file():
                raise SampleError(f"DeepFashionHD list file not found: {path}")
            keys = [_normalise_key(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            keys = sorted(
                p.relative_to(self.root).as_posix()
                for p in (self.root / "img").rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
            )
        return [key for key in keys if self._complete(key)]

    def _complete(self, key: str) -> bool:
        """Whether the photo and both keypoint files exist; reports what is missing."""
        try:
            files = [self.root / key, *pose_files(self.root, key)]
        except SampleError as error:
            self.report(key, str(error))
            return False
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            self.report(key, f"missing {', '.join(missing)}")
        return not missing

    def exists(self, key: str) -> bool:
        return key in self._key_set or self._complete(key)

    def read(self, key: str, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        candidate, subset = pose_files(self.root, key)
        try:
            keypoints = load_openpose_keypoints(candidate, subset)
        except (OSError, ValueError) as error:
            raise SampleError(f"keypoints of {self.root / key}: {error}") from None
        image = image_to_tensor(prepare_exemplar_photo(read_rgb(self.root / key), size[0]))
        return render_pose_label(keypoints, size[0]), image
