"""mask-to-image (ADE20k): a segmentation mask + an exemplar photo and its mask → an image with the mask's layout.

No ADE20k weights were published; the demo runs the packaged model trained on procedural scenes.
"""

from __future__ import annotations

from functools import cache

from ..demo_model import DEMO_MODEL
from .base import Tab, TabInput, Task, TrainingRecipe, WeightSources

__all__ = ["MASK_TO_IMAGE"]


@cache
def _encoder():
    from ..processing.encoders.mask import ADE20KMaskEncoder

    return ADE20KMaskEncoder


MASK_TO_IMAGE = Task(
    name="mask-to-image",
    load_encoder=_encoder,
    structure_forms="an ADE20k index or palette PNG",
    training=TrainingRecipe(data_kinds=("ade20k", "scenes"), config="configs/train_ade20k.yaml"),
    weights=WeightSources(
        default=DEMO_MODEL,
        how_to_get=(
            "No ADE20k weights were published. Train them with `cocosnet train --config configs/train_ade20k.yaml "
            "--data-root ADEChallengeData2016` and pass `--weights mask-to-image=runs/ade20k/pipeline` "
            "(or set COCOSNET_WEIGHTS_MASK_TO_IMAGE); without configured weights the tab uses the packaged "
            f"demo weights (`CoCosNetPipeline.from_pretrained(\"{DEMO_MODEL}\")`) when this installation has them."
        ),
    ),
    tab=Tab(
        title="Mask → image",
        description=(
            "Upload an ADE20k segmentation mask (index PNG, values 0–150, or a palette PNG) — or draw one with the "
            "class colours below, or upload a photo to segment when a segmentation backend is installed — and an "
            "exemplar photo with its mask. The result has the mask's layout and the exemplar's appearance."
        ),
        summary="Mask-to-image: an image with the layout of an ADE20k segmentation mask and the appearance of an exemplar photo.",
        missing_structure="upload an ADE20k mask (index or palette PNG) or a photo, or draw one",
        inputs=(
            TabInput(
                "structure", "ade20k-editor", "structure", "Structure: ADE20k mask (upload or draw) or a photo",
                "the ImageEditor value whose background is the ADE20k mask (index PNG with values 0-150, or a palette PNG) "
                "or a photo to segment.",
                elem="structure",
            ),
            TabInput("exemplar", "photo", "exemplar", "Exemplar photo", "the exemplar photo whose colours and textures are used.", elem="exemplar"),
            TabInput(
                "exemplar_mask", "index-mask", "exemplar_structure",
                "Exemplar mask (index or palette PNG; extracted from the photo when empty and a segmenter is installed)",
                "the exemplar's ADE20k mask (same shape as the photo); extracted from the photo when omitted and a "
                "segmenter is installed.",
                elem="exemplar-mask",
            ),
        ),
    ),
)
