"""Structure encoders (the top layer of ``processing/``): one per model task, user input → label.

``base`` is the interface; ``pose``, ``mask`` and ``edges`` are the encoders of pose-to-body,
mask-to-image and edge-to-face (which task uses which: :mod:`pipeline_cocosnet.tasks`).
Builds on ``formats/`` and ``backends/``.
"""

from . import base, edges, mask, pose
from .base import *  # noqa: F401,F403
from .edges import *  # noqa: F401,F403
from .mask import *  # noqa: F401,F403
from .pose import *  # noqa: F401,F403

__all__ = [*base.__all__, *edges.__all__, *mask.__all__, *pose.__all__]
