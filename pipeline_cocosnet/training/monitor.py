"""Progress output: loss logs (CSV, and TensorBoard through accelerate) and sample grids (PNG)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["CSVLogger", "label_to_rgb", "sample_grid"]


class CSVLogger:
    """Appends ``step,<loss>,…`` rows to a CSV file (the header is written once, from the first row)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fields: Optional[list[str]] = None
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open(newline="") as f:
                self.fields = next(csv.reader(f), None)

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.fields is None:
            self.fields = ["step", *values]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        row = {"step": step, **values}
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_format(row.get(name, "")) for name in self.fields])

    def drop_after(self, step: int) -> int:
        """Remove rows logged after ``step`` (a resumed run logs them again); returns how many were removed.

        The file is rewritten aside and renamed into place, so a kill leaves the old or the new file.
        """
        if not self.path.is_file():
            return 0
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return 0
        header, body = rows[0], rows[1:]
        kept = [r for r in body if r and _step_of(r) is not None and _step_of(r) <= step]
        if len(kept) == len(body):
            return 0
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(kept)
        partial.replace(self.path)
        return len(body) - len(kept)


def _step_of(row: list[str]) -> Optional[int]:
    try:
        return int(row[0])
    except ValueError:
        return None


def _format(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _palette(n: int) -> torch.Tensor:
    rng = np.random.default_rng(12345)
    colours = rng.integers(40, 256, size=(n, 3))
    colours[0] = 0
    return torch.from_numpy(colours).float() / 127.5 - 1


def label_to_rgb(label: torch.Tensor, task: Optional[str] = None) -> torch.Tensor:
    """B×Cl×H×W label → B×3×H×W picture in [-1, 1] (pose: its skeleton; 1 channel: grey; one-hot: colours)."""
    label = label.float()
    if task == "pose-to-body" or label.shape[1] == 3:
        return label[:, :3] * 2 - 1
    if label.shape[1] == 1:
        return label.expand(-1, 3, -1, -1) * 2 - 1
    if task == "mask-to-image":
        from ..processing.formats.ade20k import ADE20K_PALETTE

        palette = torch.tensor([(0, 0, 0), *ADE20K_PALETTE], dtype=torch.float32) / 127.5 - 1
    else:
        palette = _palette(label.shape[1])
    return palette.to(label.device)[label.argmax(dim=1)].permute(0, 3, 1, 2)


@torch.no_grad()
def sample_grid(columns: list[torch.Tensor], path: str | Path, max_rows: int = 4) -> Path:
    """Save a PNG with one row per sample and one column per tensor (each B×3×h×w in [-1, 1], resized to the largest)."""
    size = max((c.shape[-2:] for c in columns), key=lambda s: s[0] * s[1])
    tiles = [F.interpolate(c[:max_rows].detach().float().cpu(), size=tuple(size), mode="nearest") for c in columns]
    grid = torch.cat([torch.cat(list(t.unbind(0)), dim=1) for t in tiles], dim=2)  # 3×(rows·H)×(cols·W)
    array = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
