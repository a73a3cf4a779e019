"""pose-to-body (DeepFashionHD): body keypoints + a photo of a person → that person in the pose.

The one task with published weights (``release:deepfashionhd``).
"""

from __future__ import annotations

from functools import cache

from .base import Tab, TabInput, Task, TrainingRecipe, WeightSources

__all__ = ["POSE_TO_BODY"]


@cache
def _encoder():
    from ..processing.encoders.pose import PoseEncoder

    return PoseEncoder


POSE_TO_BODY = Task(
    name="pose-to-body",
    load_encoder=_encoder,
    structure_forms="an OpenPose .json or NAME_candidate.txt",
    training=TrainingRecipe(data_kinds=("deepfashionhd",), config="configs/train_deepfashionhd.yaml"),
    weights=WeightSources(
        release="deepfashionhd",
        how_to_get=(
            "Use the published DeepFashionHD checkpoint: start the app with `--weights pose-to-body=release:deepfashionhd` "
            "(downloaded and converted on first use; or set COCOSNET_WEIGHTS_POSE_TO_BODY), or fetch it once with "
            "`cocosnet fetch-release deepfashionhd --output weights/deepfashionhd`. With the research code's files already "
            "downloaded: `--weights pose-to-body=checkpoints/deepfashionHD` (their folder, converted once), or "
            "`cocosnet convert --corr latest_net_Corr.pth --translator latest_net_G.pth --output weights/deepfashionhd`; "
            "then `--weights pose-to-body=weights/deepfashionhd`. "
            "Or train your own: `cocosnet train --config configs/train_deepfashionhd.yaml` (the model lands in OUTPUT_DIR/pipeline)."
        ),
    ),
    tab=Tab(
        title="Pose → body",
        description=(
            "Upload the pose as an OpenPose JSON file (18 or 25 keypoints on the 1024×1024 canvas) or a DeepFashionHD "
            "NAME_candidate.txt + NAME_subset.txt pair — or a photo of a person when a pose backend is installed — and "
            "an exemplar photo with its keypoints (extracted from the photo when omitted and a backend is installed)."
        ),
        summary="Pose-to-body: a photo of the exemplar's person and clothes in another pose (DeepFashionHD).",
        missing_structure="upload the pose as an OpenPose JSON file (or candidate/subset pair) or a photo of a person",
        inputs=(
            TabInput(
                "pose_file", "keypoints", "structure", "Pose: OpenPose .json, or NAME_candidate.txt + NAME_subset.txt",
                "the target pose: one OpenPose .json file (18 or 25 keypoints on the 1024x1024 canvas) or a DeepFashionHD "
                "NAME_candidate.txt + NAME_subset.txt pair; may be empty when pose_photo is given.",
                elem="pose",
            ),
            TabInput("exemplar", "photo", "exemplar", "Exemplar photo", "the exemplar photo of a person.", elem="exemplar"),
            TabInput(
                "pose_photo", "photo", "structure", "…or a photo of a person (needs a pose backend)",
                "a photo of a person whose pose is extracted (needs a pose backend); used when pose_file is empty.",
            ),
            TabInput(
                "exemplar_pose_file", "keypoints", "exemplar_structure",
                "Exemplar pose (.json or candidate + subset; extracted from the photo when empty)",
                "the exemplar's keypoints (.json or candidate + subset); extracted from the exemplar photo when omitted.",
            ),
        ),
    ),
)
