"""The tasks, one file each, and their registry: the only place task names are written.

``TASKS`` maps each name to its :class:`~pipeline_cocosnet.tasks.base.Task`, in the demo's tab
order. The pipeline finds a model's encoder here (:func:`get_task`), the CLI its choices, the
app its tabs and weight sources, training the task of a data kind (:func:`task_for_data`).

Adding a task: a file here defining one ``Task`` (its encoder, tab, weights, training), its
entry in ``TASKS``, and ``examples/<name>/`` for the demo. See docs/architecture.md §12.
"""

from __future__ import annotations

from .base import InputKind, InputRole, Tab, TabInput, Task, TrainingRecipe, WeightSources
from .edge_to_face import EDGE_TO_FACE
from .mask_to_image import MASK_TO_IMAGE
from .oil_portrait import OIL_PORTRAIT
from .pose_to_body import POSE_TO_BODY

__all__ = [
    "TASKS",
    "MODEL_TASKS",
    "RESEARCH_TASK",
    "get_task",
    "task_for_data",
    "Task",
    "Tab",
    "TabInput",
    "WeightSources",
    "TrainingRecipe",
    "InputKind",
    "InputRole",
]

#: name → task, in the demo's tab order
TASKS: dict[str, Task] = {task.name: task for task in (MASK_TO_IMAGE, EDGE_TO_FACE, POSE_TO_BODY, OIL_PORTRAIT)}
#: the names a pipeline's ``config.task`` may have (tasks with a model and encoder of their own)
MODEL_TASKS: tuple[str, ...] = tuple(name for name, task in TASKS.items() if task.is_model_task)
#: the task of the research code's published checkpoints (the one with a release): what ``cocosnet convert``
#: and the release records assume
RESEARCH_TASK: str = next(name for name, task in TASKS.items() if task.weights.release)


def get_task(name: str, *, model: bool = False) -> Task:
    """The task called ``name``; with ``model``, only model tasks. Unknown names raise ``ValueError`` listing the known."""
    known = MODEL_TASKS if model else tuple(TASKS)
    if name not in known:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(known)}")
    return TASKS[name]


def task_for_data(kind: str) -> Task | None:
    """The model task whose labels the training reader ``kind`` produces (None: the reader is task-less)."""
    return next((t for t in TASKS.values() if t.is_model_task and kind.lower() in t.training.data_kinds), None)
