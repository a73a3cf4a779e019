"""Shape checks with messages that name the argument and the problem."""

from __future__ import annotations

import torch

#: Height and width must be multiples of this (the generator starts at 1/32) …
SIZE_MULTIPLE = 32
#: … and at least this (reflection padding needs 2 pixels at 1/32).
MIN_SIZE = 64


def check_size(height: int, width: int, what: str = "image") -> None:
    """Raise ValueError unless both sides are multiples of 32 and at least 64."""
    if min(height, width) < MIN_SIZE or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        def nearest(x: int) -> int:
            return max(MIN_SIZE, round(x / SIZE_MULTIPLE) * SIZE_MULTIPLE)

        raise ValueError(
            f"{what} size {height}×{width} is not supported: height and width must be multiples of "
            f"{SIZE_MULTIPLE} and at least {MIN_SIZE} (e.g. {nearest(height)}×{nearest(width)})"
        )


def check_batch(name: str, x: object, channels: int, like: torch.Tensor | None = None) -> None:
    """Raise ValueError unless ``x`` is a B×channels×H×W float tensor (matching ``like``'s B, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be B×C×H×W (4 dimensions), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels but the model expects {channels}")
    if like is not None and (x.shape[0] != like.shape[0] or x.shape[-2:] != like.shape[-2:]):
        raise ValueError(
            f"{name} is {x.shape[0]}×{x.shape[2]}×{x.shape[3]} (batch×H×W) but the structure is "
            f"{like.shape[0]}×{like.shape[2]}×{like.shape[3]}"
        )
