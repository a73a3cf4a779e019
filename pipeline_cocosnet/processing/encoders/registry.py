"""The task → structure-encoder registry, written out (no registration as an import side effect).

``ENCODERS`` maps each task name to its encoder class. Code that adds a task calls
:func:`register_encoder` explicitly (for example at the start of an application).
"""

from __future__ import annotations

from typing import Any

from .base import StructureEncoder
from .edges import EdgeEncoder
from .mask import ADE20KMaskEncoder
from .pose import PoseEncoder

__all__ = ["ENCODERS", "register_encoder", "get_encoder"]

#: task name → encoder class, one per task the published models cover
ENCODERS: dict[str, type[StructureEncoder]] = {
    PoseEncoder.task: PoseEncoder,
    ADE20KMaskEncoder.task: ADE20KMaskEncoder,
    EdgeEncoder.task: EdgeEncoder,
}


def register_encoder(cls: type[StructureEncoder]) -> type[StructureEncoder]:
    """Make ``cls`` the encoder of ``cls.task`` (replacing any earlier one); returns ``cls``."""
    ENCODERS[cls.task] = cls
    return cls


def get_encoder(task: str, **kwargs: Any) -> StructureEncoder:
    """The encoder instance for ``task`` (keyword arguments go to its constructor)."""
    try:
        encoder_class = ENCODERS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(sorted(ENCODERS))}") from None
    return encoder_class(**kwargs)
