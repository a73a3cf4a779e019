"""edge-to-face (MetFaces): an edge map (or a face photo's edges) + an exemplar portrait → a portrait with those lines."""

from __future__ import annotations

from functools import cache

from .base import Tab, TabInput, Task, TrainingRecipe, WeightSources

__all__ = ["EDGE_TO_FACE"]


@cache
def _encoder():
    from ..processing.encoders.edges import EdgeEncoder

    return EdgeEncoder


EDGE_TO_FACE = Task(
    name="edge-to-face",
    load_encoder=_encoder,
    structure_forms="an edge map or a face photo",
    training=TrainingRecipe(data_kinds=("edges",), config="configs/train_metfaces.yaml"),
    weights=WeightSources(
        how_to_get=(
            "No edge-to-face (MetFaces) weights were published. Train them with `cocosnet train --config "
            "configs/train_metfaces.yaml --data-root metfaces/images` and pass `--weights edge-to-face=OUTPUT_DIR/pipeline` "
            "(or set COCOSNET_WEIGHTS_EDGE_TO_FACE), or point it at any pipeline folder or Hub repo with task edge-to-face."
        ),
    ),
    tab=Tab(
        title="Edges → face",
        description=(
            "Upload an edge map (white lines on black, or black on white) or a face photo (its edges are extracted), "
            "and an exemplar portrait (its edges are extracted automatically)."
        ),
        summary=(
            "Edge-to-face: a portrait with the lines of an edge map (or of a face photo's edges) and the appearance of "
            "an exemplar portrait."
        ),
        missing_structure="upload an edge map or a face photo",
        inputs=(
            TabInput(
                "structure", "image", "structure", "Structure: edge map or face photo",
                "an edge map (white lines on black, or black on white) or a face photo whose edges are extracted.",
                elem="structure",
            ),
            TabInput(
                "exemplar", "photo", "exemplar", "Exemplar portrait", "the exemplar portrait; its edges are extracted automatically.",
                elem="exemplar",
            ),
            TabInput(
                "align_faces", "checkbox", "option", "Align faces (dlib, FFHQ/MetFaces crop) in photos and the exemplar",
                "crop and align faces (dlib, FFHQ/MetFaces style) in photos and the exemplar first.",
            ),
        ),
    ),
)
