"""Photo backends (the middle layer of ``processing/``): models that read a structure off a photo.

Segmentation (ADE20k masks), pose estimation (OpenPose-18 keypoints) and face landmarks with
FFHQ alignment. Each imports its optional packages (transformers, mediapipe, dlib) only when
first used; ``common`` holds the shared plumbing (clear errors for a missing package or an
unloadable model, a per-photo result cache). Builds on ``formats/`` only.
"""

from . import common, face, pose_estimation, segmentation
from .common import *  # noqa: F401,F403
from .face import *  # noqa: F401,F403
from .pose_estimation import *  # noqa: F401,F403
from .segmentation import *  # noqa: F401,F403

__all__ = [*common.__all__, *face.__all__, *pose_estimation.__all__, *segmentation.__all__]
