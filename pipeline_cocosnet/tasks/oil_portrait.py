"""oil-portrait: edge-to-face with a photo input and a portrait exemplar.

The photo's face is aligned, its edges extracted, and the edge-to-face model paints them in the
exemplar portrait's style: the same model, encoder and training as edge-to-face (it uses that
task's weights unless configured on its own), with face alignment always on.
"""

from __future__ import annotations

import dataclasses

from .base import Tab, TabInput, WeightSources
from .edge_to_face import EDGE_TO_FACE

__all__ = ["OIL_PORTRAIT"]

OIL_PORTRAIT = dataclasses.replace(
    EDGE_TO_FACE,
    name="oil-portrait",
    uses_model_of=EDGE_TO_FACE.name,
    encoder_options={"align_faces": True},
    structure_forms="a photo of a person",
    weights=WeightSources(
        shared_with=EDGE_TO_FACE.name,
        how_to_get=(
            "The oil-portrait tab runs an edge-to-face (MetFaces) model: configure `--weights edge-to-face=FOLDER` "
            "(used by both tabs) or `--weights oil-portrait=FOLDER`; train one with `cocosnet train --config "
            "configs/train_metfaces.yaml`."
        ),
    ),
    tab=Tab(
        title="Oil portrait",
        description=(
            "Upload a photo of a person: the face is found and aligned (dlib), its edges extracted, and the edge-to-face "
            "model paints it in the style of the portrait exemplar — pick one from the gallery or upload your own."
        ),
        summary=(
            "Oil portrait: a photo of a person painted in the style of a portrait: its face is aligned, its edges "
            "extracted and the edge-to-face model paints them."
        ),
        missing_structure="upload a photo of a person",
        inputs=(
            TabInput("photo", "photo", "structure", "Photo of a person", "a photo of a person (one face).", elem="photo"),
            TabInput("exemplar", "photo", "exemplar", "Portrait exemplar", "the portrait whose style is used.", elem="exemplar"),
        ),
    ),
)
