"""Data formats (the bottom layer of ``processing/``): ADE20k class tables, palette and masks;
body keypoints, OpenPose files and the DeepFashionHD pose label. Imports nothing above it."""

from .ade20k import (
    ADE20K_CLASSES,
    ADE20K_LABEL_CHANNELS,
    ADE20K_NUM_CLASSES,
    ADE20K_PALETTE,
    class_legend,
    load_ade20k_mask,
    mask_to_palette,
    palette_to_mask,
)
from .keypoints import (
    CANVAS_SIZE,
    NUM_KEYPOINTS,
    PAD_FILL,
    POSE_LABEL_CHANNELS,
    Keypoints,
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
    "ADE20K_CLASSES",
    "ADE20K_LABEL_CHANNELS",
    "ADE20K_NUM_CLASSES",
    "ADE20K_PALETTE",
    "class_legend",
    "load_ade20k_mask",
    "mask_to_palette",
    "palette_to_mask",
    "CANVAS_SIZE",
    "NUM_KEYPOINTS",
    "PAD_FILL",
    "POSE_LABEL_CHANNELS",
    "Keypoints",
    "load_openpose_json",
    "load_openpose_keypoints",
    "normalize_keypoints",
    "pad_to_square",
    "prepare_exemplar_photo",
    "render_pose_image",
    "render_pose_label",
    "scale_keypoints_to_canvas",
]
