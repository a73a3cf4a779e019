"""Photo backends (the middle layer of ``processing/``): models that read a structure off a photo.

Segmentation (ADE20k masks), pose estimation (OpenPose-18 keypoints) and face landmarks with
FFHQ alignment. Each imports its optional packages (transformers, mediapipe, dlib) only when
first used; ``common`` holds the shared plumbing (clear errors for a missing package or an
unloadable model, a per-photo result cache). Builds on ``formats/`` only.
"""

from .common import BackendMissingError, ModelUnavailableError, PhotoCache, extra_hint, load_pretrained, photo_key, require
from .face import (
    DlibLandmarker,
    FaceAlignment,
    FaceAlignmentWarning,
    FaceBackendMissingError,
    FaceLandmarker,
    FaceLandmarks,
    align_face,
    center_crop,
    default_landmarker,
    resolve_landmarker,
)
from .pose_estimation import (
    MediaPipePoseEstimator,
    PoseEstimator,
    VitPoseEstimator,
    coco17_to_openpose18,
    get_pose_estimator,
)
from .segmentation import Segmenter, TransformersSegmenter, get_segmenter, render_segmentation, segment_photo

__all__ = [
    "BackendMissingError",
    "ModelUnavailableError",
    "PhotoCache",
    "extra_hint",
    "load_pretrained",
    "photo_key",
    "require",
    "DlibLandmarker",
    "FaceAlignment",
    "FaceAlignmentWarning",
    "FaceBackendMissingError",
    "FaceLandmarker",
    "FaceLandmarks",
    "align_face",
    "center_crop",
    "default_landmarker",
    "resolve_landmarker",
    "MediaPipePoseEstimator",
    "PoseEstimator",
    "VitPoseEstimator",
    "coco17_to_openpose18",
    "get_pose_estimator",
    "Segmenter",
    "TransformersSegmenter",
    "get_segmenter",
    "render_segmentation",
    "segment_photo",
]
