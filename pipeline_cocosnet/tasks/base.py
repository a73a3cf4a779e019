"""What a task is: one object holding everything that differs between tasks.

A :class:`Task` names its structure encoder (user input → label), the options the encoder
runs with, the training data it learns from, where its weights come from (and the text that
says how to get them), and its demo tab (inputs, wording). Everything else (the pipeline,
the CLI, the app, training) reads tasks from the registry (:mod:`pipeline_cocosnet.tasks`)
and contains no task names.

A *model task* is one a pipeline is saved with (``config.task``) and whose encoder is saved
with it; a task that reuses another's model (oil-portrait runs edge-to-face weights) names
it in :attr:`Task.model_task`.

Kept free of heavy imports: the encoder class is loaded on first use, so ``cocosnet --help``
lists the tasks without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..processing.encoders.base import StructureEncoder

__all__ = ["Task", "TabInput", "Tab", "WeightSources", "TrainingRecipe", "InputKind", "InputRole"]

#: how a tab input is shown and read (the app maps each kind to a component and a reader):
#: ``ade20k-editor`` an ADE20k mask uploaded or drawn with the class colours (or a photo, segmented);
#: ``image`` an image passed to the encoder as it is (it tells maps from photos);
#: ``photo`` a photo whose structure the encoder extracts;
#: ``index-mask`` an ADE20k index or palette mask (shown in the class colours on upload);
#: ``keypoints`` an OpenPose .json file or a DeepFashionHD NAME_candidate.txt + NAME_subset.txt pair;
#: ``checkbox`` an encoder option turned on or off
InputKind = Literal["ade20k-editor", "image", "photo", "index-mask", "keypoints", "checkbox"]
#: what an input is for: the structure (several: the first one given is used), the exemplar photo,
#: the exemplar's structure (optional: extracted from the photo when empty), or an encoder option
InputRole = Literal["structure", "exemplar", "exemplar_structure", "option"]


@dataclass(frozen=True)
class TabInput:
    """One input of a task's demo tab, in the order of the tab's API endpoint's parameters."""

    #: the endpoint's parameter name (``/pose_to_body(pose_file, exemplar, …)``); for an option, the encoder option
    name: str
    kind: InputKind
    role: InputRole
    #: the component's label (what the visitor reads)
    label: str
    #: the endpoint docstring's description of the parameter (the API page, MCP clients)
    doc: str
    #: the component's ``elem_id`` suffix (``<task>-<elem>``), for pages and tests; None: no id
    elem: str | None = None


@dataclass(frozen=True)
class Tab:
    """A task's demo tab: its title, what it says, its inputs and its endpoint's docstring."""

    title: str
    #: Markdown shown under the tab's title
    description: str
    #: the endpoint docstring's first line
    summary: str
    inputs: tuple[TabInput, ...]
    #: the error when none of the structure inputs was given
    missing_structure: str = "upload a structure"

    def by_role(self, role: InputRole) -> list[TabInput]:
        return [item for item in self.inputs if item.role == role]

    def is_optional(self, item: TabInput) -> bool:
        """Whether the endpoint may be called without ``item``: exemplar structures (extracted when empty),
        options (off), and structure inputs after the first (alternatives to it)."""
        return item.role in ("exemplar_structure", "option") or (item.role == "structure" and item != self.by_role("structure")[0])


@dataclass(frozen=True)
class WeightSources:
    """Where a task's weights come from when the user configured none, and how to get them."""

    #: a weights name used when none is configured (e.g. the packaged ``demo``)
    default: str | None = None
    #: another task whose configured weights this one uses when its own are not configured
    shared_with: str | None = None
    #: the published release that serves it (``release:NAME``; the app offers a download button)
    release: str | None = None
    #: appended to every "weights missing" message (Markdown)
    how_to_get: str = ""


@dataclass(frozen=True)
class TrainingRecipe:
    """How a task's model is trained with ``cocosnet train``."""

    #: the training readers (``data.kind``) that produce this task's labels
    data_kinds: tuple[str, ...] = ()
    #: the shipped training config (``configs/…``)
    config: str | None = None


@dataclass(frozen=True)
class Task:
    """One task: structure encoder and options, training data, weight sources, demo tab."""

    #: e.g. ``"pose-to-body"``: the registry key, the examples folder, ``--weights NAME=…``, the tab's id
    name: str
    #: loads the structure encoder class (called on first use; keeps this module free of torch)
    load_encoder: Callable[[], type[StructureEncoder]] = field(repr=False)
    tab: Tab
    weights: WeightSources = WeightSources()
    training: TrainingRecipe = TrainingRecipe()
    #: options the encoder runs with in this task (e.g. face alignment for oil-portrait)
    encoder_options: dict[str, Any] = field(default_factory=dict)
    #: the model task whose weights it runs (None: its own)
    uses_model_of: str | None = None
    #: what the CLI's help says a structure of this task is
    structure_forms: str = ""

    @property
    def model_task(self) -> str:
        """The ``config.task`` of the pipelines this task runs."""
        return self.uses_model_of or self.name

    @property
    def is_model_task(self) -> bool:
        return self.uses_model_of is None

    @property
    def api_name(self) -> str:
        """The demo endpoint's name: ``/pose_to_body``."""
        return self.name.replace("-", "_")

    @property
    def env_var(self) -> str:
        """The environment variable naming its demo weights: ``COCOSNET_WEIGHTS_POSE_TO_BODY``."""
        return "COCOSNET_WEIGHTS_" + self.name.upper().replace("-", "_")

    @property
    def encoder_class(self) -> type[StructureEncoder]:
        return self.load_encoder()

    def make_encoder(self, label_channels: int | None = None, **options: Any) -> StructureEncoder:
        """The task's encoder with its options (and ``options`` over them); an encoder whose channel count
        is an option gets ``label_channels`` (the model's)."""
        cls = self.encoder_class
        options = {**self.encoder_options, **options}
        if label_channels is not None and "channels" in cls.option_names:
            options.setdefault("channels", label_channels)
        return cls(**options)
