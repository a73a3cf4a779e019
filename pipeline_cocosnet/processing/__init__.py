"""Input preprocessing: user inputs (photos, keypoints, masks, edge maps) → network inputs.

Three layers, each importing only the ones below it (docs/architecture.md §12):

* ``formats/``: data formats (ADE20k tables and palette, keypoints and the pose label);
* ``backends/``: photo backends (segmentation, pose estimation, face landmarks), optional packages
  imported on first use;
* ``encoders/``: the per-task structure encoders and their explicit registry.

``errors`` (``StructureError``) and ``images`` (photo/array/tensor conversions) sit below all three.
"""

from . import backends, encoders, formats
from .backends import *  # noqa: F401,F403  (transformers / mediapipe / dlib load only when a backend is used)
from .encoders import *  # noqa: F401,F403
from .errors import StructureError
from .formats import *  # noqa: F401,F403

__all__ = [*formats.__all__, *backends.__all__, *encoders.__all__, "StructureError"]

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
