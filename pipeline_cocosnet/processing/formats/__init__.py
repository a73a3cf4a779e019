"""Data formats (the bottom layer of ``processing/``): ADE20k class tables, palette and masks;
body keypoints, OpenPose files and the DeepFashionHD pose label. Imports nothing above it."""

from . import ade20k, keypoints
from .ade20k import *  # noqa: F401,F403
from .keypoints import *  # noqa: F401,F403

__all__ = [*ade20k.__all__, *keypoints.__all__]
