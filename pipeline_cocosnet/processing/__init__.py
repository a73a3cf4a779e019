"""Input preprocessing: user inputs (photos, keypoints, masks, edge maps) → network inputs.

Three layers, each importing only the ones below it (docs/architecture.md §12):

* ``formats/``: data formats (ADE20k tables and palette, keypoints and the pose label);
* ``backends/``: photo backends (segmentation, pose estimation, face landmarks), optional packages
  imported on first use;
* ``encoders/``: the per-task structure encoders and their explicit registry.

``errors`` (``StructureError``) and ``images`` (photo/array/tensor conversions) sit below all three.
"""

from .backends import (  # transformers / mediapipe / dlib are imported only when a backend is used
    BackendMissingError,
    DlibLandmarker,
    FaceAlignment,
    FaceAlignmentWarning,
    FaceBackendMissingError,
    FaceLandmarker,
    FaceLandmarks,
    MediaPipePoseEstimator,
    ModelUnavailableError,
    PoseEstimator,
    Segmenter,
    TransformersSegmenter,
    VitPoseEstimator,
    align_face,
    center_crop,
    coco17_to_openpose18,
    default_landmarker,
    get_pose_estimator,
    get_segmenter,
    render_segmentation,
    segment_photo,
)
from .encoders import (
    ENCODERS,
    ADE20KMaskEncoder,
    EdgeEncoder,
    PhotoEdges,
    PoseEncoder,
    StructureEncoder,
    binarize_edge_map,
    get_encoder,
    is_edge_map,
    photo_to_edges,
    register_encoder,
)
from .errors import StructureError
from .formats import (
    ADE20K_CLASSES,
    ADE20K_LABEL_CHANNELS,
    ADE20K_PALETTE,
    POSE_LABEL_CHANNELS,
    class_legend,
    load_ade20k_mask,
    load_openpose_json,
    load_openpose_keypoints,
    mask_to_palette,
    normalize_keypoints,
    pad_to_square,
    palette_to_mask,
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
    "ADE20KMaskEncoder",
    "ADE20K_CLASSES",
    "ADE20K_LABEL_CHANNELS",
    "ADE20K_PALETTE",
    "class_legend",
    "load_ade20k_mask",
    "mask_to_palette",
    "palette_to_mask",
    "EdgeEncoder",
    "PhotoEdges",
    "binarize_edge_map",
    "is_edge_map",
    "photo_to_edges",
    "DlibLandmarker",
    "FaceAlignment",
    "FaceAlignmentWarning",
    "FaceBackendMissingError",
    "FaceLandmarker",
    "FaceLandmarks",
    "align_face",
    "center_crop",
    "default_landmarker",
    "BackendMissingError",
    "ModelUnavailableError",
    "PoseEstimator",
    "VitPoseEstimator",
    "MediaPipePoseEstimator",
    "coco17_to_openpose18",
    "get_pose_estimator",
    "Segmenter",
    "TransformersSegmenter",
    "get_segmenter",
    "render_segmentation",
    "segment_photo",
]


def _bridge_flat_paths() -> None:
    """TEMPORARY (removed once every user imports the layered paths): the flat module names of
    the old ``processing/`` (``processing.labels``, ``.pose``, …) as aliases of the new modules."""
    import sys
    import types

    from .backends import face, pose_estimation, segmentation
    from .encoders import base, edges, mask, pose
    from .formats import ade20k, keypoints

    for name, modules in {
        "labels": (ade20k, mask),
        "pose": (keypoints, pose),
        "edges": (edges,),
        "face": (face,),
        "base": (base, errors_module, registry),
        "pose_estimation": (pose_estimation,),
        "segmentation": (segmentation,),
    }.items():
        alias = types.ModuleType(f"{__name__}.{name}")
        for module in modules:
            alias.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        sys.modules[alias.__name__] = alias
        globals()[name] = alias


from . import errors as errors_module  # noqa: E402
from .encoders import registry  # noqa: E402

_bridge_flat_paths()
