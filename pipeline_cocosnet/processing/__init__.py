"""Input preprocessing: turning photos and keypoints into network inputs."""

from .base import ENCODERS, StructureEncoder, StructureError, get_encoder, register_encoder
from .pose import (
    POSE_LABEL_CHANNELS,
    PoseEncoder,
    load_openpose_json,
    load_openpose_keypoints,
    normalize_keypoints,
    pad_to_square,
    prepare_exemplar_photo,
    render_pose_image,
    render_pose_label,
    scale_keypoints_to_canvas,
)

__all__ = [
    "ENCODERS",
    "StructureEncoder",
    "StructureError",
    "get_encoder",
    "register_encoder",
    "PoseEncoder",
    "POSE_LABEL_CHANNELS",
    "load_openpose_json",
    "load_openpose_keypoints",
    "normalize_keypoints",
    "pad_to_square",
    "prepare_exemplar_photo",
    "render_pose_image",
    "render_pose_label",
    "scale_keypoints_to_canvas",
]
