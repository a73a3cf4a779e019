"""Input preprocessing: user inputs (photos, keypoints, masks, edge maps) → network inputs.

Three layers, each importing only the ones below it (docs/architecture.md §12):

* ``formats/``: data formats (ADE20k tables and palette, keypoints and the pose label);
* ``backends/``: photo backends (segmentation, pose estimation, face landmarks), optional packages
  imported on first use;
* ``encoders/``: the structure encoders, one per model task (the tasks: ``pipeline_cocosnet.tasks``).

``errors`` (``StructureError``) and ``images`` (photo/array/tensor conversions) sit below all three.
"""

from . import backends, encoders, formats
from .backends import *  # noqa: F401,F403  (transformers / mediapipe / dlib load only when a backend is used)
from .encoders import *  # noqa: F401,F403
from .errors import StructureError
from .formats import *  # noqa: F401,F403

__all__ = [*formats.__all__, *backends.__all__, *encoders.__all__, "StructureError"]
