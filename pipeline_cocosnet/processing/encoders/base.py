"""The structure-encoder interface: what a task's users have → the label its model expects.

Each model task has one encoder (named by its task in :mod:`pipeline_cocosnet.tasks`). It
declares how many label channels it produces (the pipeline checks that against the model),
encodes user inputs into a Cl×H×W float tensor in [0, 1], says which inputs are one item
rather than a batch, renders a structure (and a label) for display, and says how an exemplar
photo is brought to the model's size.

Its options (the constructor's keyword arguments) are saved with a pipeline: :meth:`get_config`
gives them as JSON values and :meth:`from_config` rebuilds the encoder. Setting an option on an
encoder (``encoder.align_faces = True``) takes effect on its next input.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from PIL import Image

from ..errors import StructureError

__all__ = ["StructureEncoder", "Choice", "Backend", "class_colours"]


def class_colours(label: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """B×Cl×H×W one-hot labels → B×3×H×W pictures: each pixel the ``palette`` row (Cl×3 in [0, 1]) of its class."""
    return palette.to(label.device)[label.argmax(dim=1)].permute(0, 3, 1, 2)


def _random_palette(classes: int) -> torch.Tensor:
    colours = torch.from_numpy(np.random.default_rng(12345).integers(40, 256, size=(classes, 3))).float() / 255
    colours[0] = 0
    return colours


class Choice:
    """An encoder option that must be one of ``choices``; setting anything else raises ``ValueError`` naming them."""

    def __init__(self, *choices: Any, doc: str = ""):
        self.choices = choices
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, encoder: Any, owner: type | None = None) -> Any:
        return self if encoder is None else encoder.__dict__[self.name]

    def __set__(self, encoder: Any, value: Any) -> None:
        if value not in self.choices:
            allowed = ", ".join(map(repr, self.choices[:-1])) + f" or {self.choices[-1]!r}"
            raise ValueError(f"{self.name} must be {allowed}, got {value!r}")
        encoder.__dict__[self.name] = value


class Backend:
    """An encoder option naming a photo backend, made on first use.

    Set it to a spec (``None`` for the default, a name, a model id or a backend object);
    reading it gives the backend, made from the spec by ``resolve`` on the first read, so
    inputs that need no photo backend never load one. Setting it again takes effect on the
    next photo. ``encoder.option(name)`` gives the spec.
    """

    def __init__(self, resolve: Callable[[Any], Any], doc: str = ""):
        self.resolve = resolve
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, encoder: Any, owner: type | None = None) -> Any:
        if encoder is None:
            return self
        state = encoder.__dict__[self.name]  # [spec, backend or None]
        if state[1] is None:
            state[1] = self.resolve(state[0])
        return state[1]

    def __set__(self, encoder: Any, spec: Any) -> None:
        encoder.__dict__[self.name] = [spec, None]

    def spec(self, encoder: Any) -> Any:
        """The spec the option was set to."""
        return encoder.__dict__[self.name][0]


class StructureEncoder(ABC):
    """Base class of the per-task structure encoders."""

    #: the model task it encodes for (:mod:`pipeline_cocosnet.tasks`); saved as ``structure_encoder.task``
    task: ClassVar[str]
    #: number of label channels produced
    channels: int
    #: the constructor's keyword arguments that make up the saved options (see :meth:`get_config`)
    option_names: ClassVar[tuple[str, ...]] = ()

    def option(self, name: str) -> Any:
        """The value of option ``name`` as given (a :class:`Backend` as its spec, not the backend)."""
        descriptor = getattr(type(self), name, None)
        return descriptor.spec(self) if isinstance(descriptor, Backend) else getattr(self, name)

    def get_config(self) -> dict[str, Any]:
        """``{"task": …, option: value, …}`` in JSON values; :meth:`from_config` rebuilds the encoder.

        A backend given as an object (a custom pose estimator, segmenter or landmarker) cannot be
        saved as such: it is saved by its ``name`` when that is a string, else as ``None`` (the
        default backend), with a warning either way.
        """
        config: dict[str, Any] = {"task": self.task}
        for name in self.option_names:
            value = self.option(name)
            if value is not None and not isinstance(value, (str, bool, int, float)):
                label = getattr(value, "name", None)
                saved = label if isinstance(label, str) else None
                warnings.warn(
                    f"{self.task}: option {name}={type(value).__name__} is an object and is saved as "
                    f"{saved!r}; pass it again after loading",
                    stacklevel=2,
                )
                value = saved
            config[name] = value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StructureEncoder:
        """The encoder :meth:`get_config` described (unknown keys raise ``ValueError`` naming them)."""
        options = {k: v for k, v in config.items() if k != "task"}
        unknown = sorted(set(options) - set(cls.option_names))
        if unknown:
            raise ValueError(f"{cls.task}: unknown structure-encoder options {unknown}; known: {list(cls.option_names)}")
        return cls(**options)

    @abstractmethod
    def encode(self, structure: Any, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Encode one structure into a ``channels×H×W`` label in [0, 1] at ``size`` = (H, W).

        The label is computed in ``dtype`` (float32, or float64 for a float64 pipeline: values
        such as k/255 are then exact in float64, not float32 values cast up).
        """

    def extract(self, photo: Image.Image) -> Any:
        """The structure of a photo (e.g. for an exemplar given without its structure)."""
        raise StructureError(
            f"{self.task}: cannot extract the structure from a photo with this encoder; pass it explicitly"
        )

    @classmethod
    def is_single(cls, value: Any) -> bool:
        """Whether a list given as a structure is one item (e.g. one pose's keypoints) rather than a batch."""
        return False

    def render(self, structure: Any, size: tuple[int, int]) -> Image.Image:
        """An RGB picture of the structure, for display."""
        label = self.encode(structure, size)
        picture = label[:3] if label.shape[0] >= 3 else label[:1].expand(3, -1, -1)
        return Image.fromarray((picture.permute(1, 2, 0) * 255).round().byte().numpy())

    @classmethod
    def label_picture(cls, label: torch.Tensor) -> torch.Tensor:
        """B×Cl×H×W labels in [0, 1] → B×3×H×W pictures in [0, 1] (training grids): 3 channels as colours,
        1 as grey, more as one-hot classes in fixed random colours (class 0 black)."""
        label = label.float()
        if label.shape[1] == 3:
            return label
        if label.shape[1] == 1:
            return label.expand(-1, 3, -1, -1)
        return class_colours(label, _random_palette(label.shape[1]))

    def prepare_exemplar(self, photo: Image.Image, size: tuple[int, int]) -> Image.Image:
        """Bring an exemplar photo to ``size`` = (H, W) as the task's training data was (default: bicubic)."""
        return photo.convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
