"""Progress output: loss logs (CSV, and accelerate's trackers) and sample grids (PNG, and the trackers' images)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..processing.encoders.base import StructureEncoder
from ..tasks import get_task

__all__ = ["CSVLogger", "label_to_rgb", "grid_image", "requested_trackers", "log_image_to_trackers"]

logger = logging.getLogger(__name__)


def requested_trackers(report_to: str | list[str], tensorboard: bool = True) -> list[str]:
    """The tracker names for accelerate's ``log_with``: ``report_to`` less what is not installed (each one warned about).

    ``report_to`` is one name, a comma-separated string or a list; ``"all"`` passes through
    (accelerate takes every installed tracker), ``"none"`` gives ``[]``. An unknown name is a
    ``ValueError`` listing the known ones. ``tensorboard=False`` (older configs) drops tensorboard.
    """
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    names = report_to.split(",") if isinstance(report_to, str) else list(report_to)
    names = [name.strip().lower() for name in names if name.strip()]
    if not tensorboard:
        names = [name for name in names if name != "tensorboard"]
    if not names or names == ["none"]:
        return []
    if "all" in names:
        return ["all"]
    unknown = [name for name in names if name not in LOGGER_TYPE_TO_CLASS]
    if unknown:
        raise ValueError(f"train.report_to: unknown tracker {', '.join(unknown)} (known: {', '.join(LOGGER_TYPE_TO_CLASS)}, all, none)")
    available = {str(tracker) for tracker in get_available_trackers()}
    for name in names:
        if name not in available:
            logger.warning("train.report_to asks for %s, which is not installed (pip install %s): logging without it "
                           "(losses still go to losses.csv)", name, name)  # fmt: skip
    return [name for name in dict.fromkeys(names) if name in available]


def log_image_to_trackers(trackers, name: str, image: np.ndarray, step: int) -> None:
    """Log one H×W×3 uint8 picture to every tracker that logs images, in the form each one takes."""
    for tracker in trackers:
        log_images = getattr(tracker, "log_images", None)
        if log_images is None:
            continue
        if tracker.name == "tensorboard":
            log_images({name: image[None]}, step=step, dataformats="NHWC")
        elif tracker.name in ("aim", "clearml"):  # one image per key
            log_images({name: image}, step=step)
        else:  # wandb, swanlab, trackio, custom trackers: a list of images per key
            log_images({name: [image]}, step=step)


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


def label_to_rgb(label: torch.Tensor, task: Optional[str] = None) -> torch.Tensor:
    """B×Cl×H×W label → B×3×H×W picture in [-1, 1], drawn by ``task``'s encoder (``label_picture``: pose its
    skeleton, ADE20k masks their palette colours); without a task: 1 channel grey, 3 as colours, more as classes."""
    encoder = get_task(task, model=True).encoder_class if task else StructureEncoder
    return encoder.label_picture(label) * 2 - 1


@torch.no_grad()
def grid_image(columns: list[torch.Tensor], max_rows: int = 4) -> np.ndarray:
    """One row per sample, one column per tensor (each B×3×h×w in [-1, 1], resized to the largest) → H×W×3 uint8."""
    size = max((c.shape[-2:] for c in columns), key=lambda s: s[0] * s[1])
    tiles = [F.interpolate(c[:max_rows].detach().float().cpu(), size=tuple(size), mode="nearest") for c in columns]
    grid = torch.cat([torch.cat(list(t.unbind(0)), dim=1) for t in tiles], dim=2)  # 3×(rows·H)×(cols·W)
    return ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()

