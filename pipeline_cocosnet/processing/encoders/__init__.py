"""Structure encoders (the top layer of ``processing/``): one per task, user input → label.

``base`` is the interface, ``registry`` the explicit task → encoder table; ``pose``,
``mask`` and ``edges`` are the encoders of pose-to-body, mask-to-image and edge-to-face.
Builds on ``formats/`` and ``backends/``.
"""

from .base import StructureEncoder
from .edges import EdgeEncoder, PhotoEdges, binarize_edge_map, is_edge_map, photo_to_edges
from .mask import ADE20KMaskEncoder
from .pose import PoseEncoder
from .registry import ENCODERS, get_encoder, register_encoder

__all__ = [
    "StructureEncoder",
    "EdgeEncoder",
    "PhotoEdges",
    "binarize_edge_map",
    "is_edge_map",
    "photo_to_edges",
    "ADE20KMaskEncoder",
    "PoseEncoder",
    "ENCODERS",
    "get_encoder",
    "register_encoder",
]
