"""CoCosNetPipeline: structure + exemplar → image, in the style of diffusers pipelines.

The networks are in ``models/`` (docs/architecture.md), the conversions of user inputs in
``processing/`` (structure encoders, :class:`~.processing.image_processor.CoCosNetImageProcessor`),
what a call returns in ``pipeline_output.py``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import replace_example_docstring

from .demo_model import DEMO_MODEL, DEMO_ORIGIN_PREFIX, demo_model_path
from .hub import check_local_weights, hub_errors, upload_pipeline_folder
from .model_card import model_card
from .precision import float32_precision
from .models import CoCosNetCorrespondence, CoCosNetTranslator
from .models import heap
from .models.attention import best_correlation
from .models.inputs import check_size
from .pipeline_output import CoCosNetPipelineOutput, ExemplarSuggestion
from .processing.backends import BackendMissingError, ModelUnavailableError
from .processing.encoders import StructureEncoder
from .processing.errors import StructureError
from .processing.image_processor import OUTPUT_TYPES, CoCosNetImageProcessor
from .processing.images import image_file_size
from .tasks import get_task

__all__ = [
    "CoCosNetPipeline",
    "CoCosNetPipelineOutput",
    "ExemplarSuggestion",
    "DEMO_MODEL",
    "DEMO_ORIGIN_PREFIX",
    "demo_model_path",
    "EXAMPLE_DOC_STRING",
]

#: called after each level of the hierarchy: ``(pipeline, level, warp)``, or diffusers style
#: ``(pipeline, level, warp, callback_kwargs) -> dict`` (see ``__call__``)
LevelCallback = Callable[..., Any]


def _takes_callback_kwargs(callback: Callable[..., Any]) -> bool:
    """Whether ``callback`` takes a fourth argument (diffusers' ``callback_kwargs``)."""
    import inspect

    try:
        parameters = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4 or any(p.kind == p.VAR_POSITIONAL for p in parameters)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from PIL import Image
        >>> from pipeline_cocosnet import CoCosNetPipeline

        >>> # the embedded demo model: mask-to-image at 128×128, trained on procedural scenes
        >>> pipe = CoCosNetPipeline.from_pretrained("demo")
        >>> mask = Image.open("examples/mask-to-image/scene_5001_mask.png")  # ADE20k class ids
        >>> exemplar = Image.open("examples/mask-to-image/scene_5006.png")
        >>> exemplar_mask = Image.open("examples/mask-to-image/scene_5006_mask.png")
        >>> image = pipe(mask, exemplar, exemplar_mask).images[0]

        >>> # the warp of every level as it finishes (coarsest first)
        >>> sizes = []
        >>> output = pipe(mask, exemplar, exemplar_mask, callback_on_level_end=lambda p, level, warp: sizes.append(warp.shape[-1]))
        >>> sizes
        [16, 32, 64, 128]
        ```
"""


#: the module saved beside ``model_index.json`` (whose ``_class_name`` becomes ``[HUB_MODULE, "CoCosNetPipeline"]``), the
#: way diffusers' Hub-hosted custom pipelines name their class, so that the Hub's generic snippet
#: ``DiffusionPipeline.from_pretrained(repo, trust_remote_code=True)`` loads a saved folder; it only imports this package
HUB_MODULE = "cocosnet_pipeline"
HUB_MODULE_SOURCE = '''"""Loads this folder with the pipeline_cocosnet package (pip install pipeline_cocosnet).

    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained("REPO_OR_FOLDER", trust_remote_code=True)

or, without running this file: ``from pipeline_cocosnet import CoCosNetPipeline; CoCosNetPipeline.from_pretrained(...)``.
"""

from pipeline_cocosnet import CoCosNetPipeline

__all__ = ["CoCosNetPipeline"]
'''


def _item(what: str, index: int, count: int) -> str:
    """How an input is named in errors: ``"structure"`` alone, ``"structure 2 of 4"`` in a batch."""
    return what if count == 1 else f"{what} {index + 1} of {count}"


def _make_generic_loadable(folder: Path) -> None:
    """Name our class in ``folder/model_index.json`` as [module, class] and write that module (see :data:`HUB_MODULE`)."""
    import json

    index_file = folder / "model_index.json"
    index = json.loads(index_file.read_text())
    index["_class_name"] = [HUB_MODULE, CoCosNetPipeline.__name__]
    index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (folder / f"{HUB_MODULE}.py").write_text(HUB_MODULE_SOURCE)


class PipelineInterrupted(RuntimeError):
    """A :class:`CoCosNetPipeline` call stopped early (``pipe.interrupt`` or its ``is_interrupted`` said so)."""


class CoCosNetPipeline(DiffusionPipeline):
    """Exemplar-based image translation with CoCosNet v2.

    Components: ``correspondence`` (:class:`CoCosNetCorrespondence`) and ``translator``
    (:class:`CoCosNetTranslator`). Config: ``task`` (which structure encoder turns user
    inputs into labels: ``"pose-to-body"``, ``"mask-to-image"``, ``"edge-to-face"``, or
    ``None`` for pre-encoded label tensors only), ``resolution`` ([H, W] the model was
    trained at), model-card metadata (``license``; ``origin``: how the weights were made;
    ``base_model``: the Hub pipeline they were fine-tuned from; ``dataset``: what they were
    trained on; see ``model_card.py``) and ``structure_encoder`` (the encoder's options, see
    :attr:`structure_encoder`).

    Args:
        structure_encoder: the task's encoder with its options (e.g.
            ``EdgeEncoder(align_faces=True)``), or its saved options as a dict, or ``None`` for
            the task's default encoder. Kept for the pipeline's life; its options are saved by
            :meth:`save_pretrained` and restored by :meth:`from_pretrained`.
    """

    model_cpu_offload_seq = "correspondence->translator"
    #: run the components' convolutions in channels-last layout (not for float64); set False to keep NCHW
    channels_last: bool = True
    #: CUDA: let float32 convolutions use TF32 inside the pipeline's calls (correlations stay IEEE
    #: float32 always); set False for IEEE float32 throughout (see ``precision.py``, README "Precision")
    tf32_convolutions: bool = True

    def __init__(
        self,
        correspondence: CoCosNetCorrespondence,
        translator: CoCosNetTranslator,
        task: str | None = None,
        resolution: tuple[int, int] | list[int] = (512, 512),
        license: str = "other",
        origin: str = "",
        base_model: str = "",
        dataset: str = "",
        structure_encoder: StructureEncoder | dict[str, Any] | None = None,
    ):
        super().__init__()
        self.register_modules(correspondence=correspondence, translator=translator)
        self.register_to_config(
            task=task, resolution=list(resolution), license=license, origin=origin, base_model=base_model, dataset=dataset
        )
        if correspondence.config.label_channels != translator.config.label_channels:
            raise ValueError(
                f"correspondence takes {correspondence.config.label_channels} label channels but the translator "
                f"{translator.config.label_channels}: the components do not belong together"
            )
        if isinstance(structure_encoder, dict):
            structure_encoder = _encoder_from_config(structure_encoder)
        self.image_processor = CoCosNetImageProcessor()
        self.structure_encoder = structure_encoder

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` (e.g. in ``callback_on_level_end``) to stop the running call at the
        next PatchMatch iteration or level (it raises :class:`PipelineInterrupted`); reset when a call starts."""
        return getattr(self, "_interrupt", False)

    @classmethod
    def _dict_from_json_file(cls, json_file: str | os.PathLike) -> dict[str, Any]:
        """diffusers' reader of ``model_index.json``, with our saved ``_class_name`` ``[HUB_MODULE, "CoCosNetPipeline"]``
        read as this class: ``CoCosNetPipeline.from_pretrained`` never runs code from the folder (only
        ``DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`` goes through :data:`HUB_MODULE`)."""
        config = super()._dict_from_json_file(json_file)
        name = config.get("_class_name")
        if isinstance(name, (list, tuple)) and len(name) == 2 and name[1] == cls.__name__:
            config["_class_name"] = cls.__name__
        return config

    def enable_sequential_cpu_offload(self, gpu_id: int | None = None, device: torch.device | str | None = None) -> None:
        """Not supported: the fused SPADE and ConvGRU layers read their child convolutions' weights
        outside those convolutions' ``forward``, where sequential offload keeps them on ``meta``.
        Use :meth:`enable_model_cpu_offload` (one component on the device at a time)."""
        raise NotImplementedError(
            "enable_sequential_cpu_offload is not supported by CoCosNetPipeline (its fused layers read weights "
            "outside the offloaded convolutions); use enable_model_cpu_offload()"
        )

    def _float32_precision(self):
        """The TF32 policy for one call (``precision.py``): convolutions as :attr:`tf32_convolutions`, matmuls IEEE."""
        return float32_precision(convolutions="tf32" if self.tf32_convolutions else "ieee", matmul="ieee")

    # ------------------------------------------------------------------ properties

    @property
    def label_channels(self) -> int:
        return self.correspondence.config.label_channels

    @property
    def structure_encoder(self) -> StructureEncoder | None:
        """The structure encoder (one object, kept), or ``None`` when the pipeline takes label tensors only.

        Configure it in place (``pipe.structure_encoder.align_faces = True``) or assign another
        (``pipe.structure_encoder = EdgeEncoder(align_faces=True)``; ``None``: the task's
        default); its channel count must match the model's. Its options go into
        ``config.structure_encoder`` when assigned and when the pipeline is saved.
        """
        return self._structure_encoder

    @structure_encoder.setter
    def structure_encoder(self, encoder: StructureEncoder | None) -> None:
        if encoder is None and self.config.task:
            encoder = get_task(self.config.task, model=True).make_encoder(self.label_channels)
        if encoder is not None and encoder.channels != self.label_channels:
            raise ValueError(
                f"{type(encoder).__name__} ({encoder.task}) encodes structures into {encoder.channels} channels but "
                f"the model takes {self.label_channels}"
            )
        self._structure_encoder = encoder
        self._register_encoder_options()

    def _register_encoder_options(self) -> None:
        """Put the encoder's current options into the config (saved in ``model_index.json``)."""
        encoder = self._structure_encoder
        self.register_to_config(structure_encoder=encoder.get_config() if encoder is not None else None)

    @property
    def is_demo(self) -> bool:
        """Whether these are the embedded demo weights (trained on procedural scenes, not real data)."""
        return str(self.config.origin or "").startswith(DEMO_ORIGIN_PREFIX)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """``DiffusionPipeline.from_pretrained``, plus the name ``"demo"`` (:data:`DEMO_MODEL`).

        A local path that does not exist raises ``FileNotFoundError("no such folder: …")``; a
        Hub id that cannot be fetched raises :class:`~pipeline_cocosnet.hub.HubError` (an
        ``OSError``) in one line naming the id and how to fill the cache.

        ``"demo"`` loads the embedded demo pipeline (:func:`demo_model_path`; stored in fp16,
        loaded in float32 unless ``dtype`` (or ``torch_dtype``) says otherwise; runs on CPU).
        """
        if str(pretrained_model_name_or_path) == DEMO_MODEL:
            folder = demo_model_path()
            if not (folder / "model_index.json").is_file():
                raise FileNotFoundError(f"the demo model is missing from this installation (expected {folder})")
            if "torch_dtype" not in kwargs and "dtype" not in kwargs:
                kwargs["dtype"] = torch.float32
            return super().from_pretrained(str(folder), **kwargs)
        name = str(pretrained_model_name_or_path)
        check_local_weights(name)  # "no such folder: …" (docs: README, weights)
        if Path(name).expanduser().is_dir():
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        with hub_errors(name, "load"), _quiet_diffusers():  # one-line errors instead of "check the stacktrace above"
            return super().from_pretrained(name, **kwargs)

    @classmethod
    def from_pipe(cls, pipeline: DiffusionPipeline, **kwargs):
        """A pipeline sharing ``pipeline``'s components (no copies), e.g. with another structure encoder::

            aligned = CoCosNetPipeline.from_pipe(pipe, structure_encoder=EdgeEncoder(align_faces=True))

        The components keep their dtype unless ``dtype`` says otherwise (diffusers' default would
        cast the shared components to float32, under the first pipeline too).
        """
        if "dtype" not in kwargs and "torch_dtype" not in kwargs:
            kwargs["dtype"] = pipeline.dtype
        return super().from_pipe(pipeline, **kwargs)

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> None:
        """Save components (safetensors), ``model_index.json`` and our model card ``README.md``.

        ``push_to_hub=True`` then uploads the folder, card included, to ``repo_id`` (default: the
        folder's name), with diffusers' Hub arguments (``commit_message``, ``private``, ``token``,
        ``create_pr``). The card is written before anything is uploaded (diffusers' own push would
        upload its generic card).
        """
        hub = {key: kwargs.pop(key) for key in ("repo_id", "commit_message", "private", "token", "create_pr") if key in kwargs}
        self._register_encoder_options()  # options set on the encoder since it was assigned
        super().save_pretrained(save_directory, push_to_hub=False, **kwargs)
        _make_generic_loadable(Path(save_directory))
        model_card(self).save(Path(save_directory) / "README.md")
        if push_to_hub:
            upload_pipeline_folder(save_directory, hub.pop("repo_id", Path(save_directory).resolve().name), **hub)

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        create_pr: bool = False,
        variant: str | None = None,
    ) -> str:
        """Upload the pipeline folder (weights, ``model_index.json``, our model card) to the Hub; returns the repo id."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, variant=variant)
            return upload_pipeline_folder(
                folder, repo_id, commit_message=commit_message, private=private, token=token, create_pr=create_pr
            )

    # ------------------------------------------------------------------ inputs

    def _working_size(self, height: int | None, width: int | None, structures: list[Any]) -> tuple[int, int]:
        encoded = [s for s in structures if self._is_encoded(s)]
        if height is None and width is None and encoded and len(encoded) == len(structures):
            height, width = encoded[0].shape[-2:]
        height = height or self.config.resolution[0]
        width = width or self.config.resolution[1]
        check_size(height, width, "requested")
        return int(height), int(width)

    def _is_encoded(self, structure: Any) -> bool:
        return (
            isinstance(structure, torch.Tensor)
            and structure.is_floating_point()
            and structure.dim() == 3
            and structure.shape[0] == self.label_channels
        )

    @property
    def _input_dtype(self) -> torch.dtype:
        """The dtype inputs are built in: float32, or float64 for float64 components (then exact end to end).

        Half-precision components get float32 inputs (cast to their dtype at the model's door).
        """
        return torch.promote_types(self.correspondence.dtype, torch.float32)

    def _encode_structure(self, structure: Any, size: tuple[int, int], what: str) -> torch.Tensor:
        """One structure as a ``Cl×H×W`` label in [0, 1] at ``size``, in :attr:`_input_dtype`."""
        dtype = self._input_dtype
        if isinstance(structure, np.ndarray) and np.issubdtype(structure.dtype, np.floating) and structure.ndim == 3:
            structure = torch.from_numpy(structure)  # (2-D float arrays, e.g. 18×2 keypoints, go to the encoder)
        if self._is_encoded(structure):
            if structure.min() < 0 or structure.max() > 1:
                raise StructureError(f"{what}: an encoded label must lie in [0, 1]")
            label = structure.to(dtype)
            return F.interpolate(label[None], size=size, mode="nearest")[0] if tuple(label.shape[-2:]) != size else label
        if isinstance(structure, torch.Tensor) and structure.is_floating_point():
            raise StructureError(
                f"{what}: a float tensor is taken as an encoded label and must be {self.label_channels}×H×W "
                f"(the model's label channels), got shape {tuple(structure.shape)}"
            )
        encoder = self.structure_encoder
        if encoder is None:
            raise StructureError(
                f"{what}: this pipeline has no task set, so it takes only encoded label tensors "
                f"({self.label_channels}×H×W in [0, 1])"
            )
        try:
            return encoder.encode(structure, size, dtype=dtype)
        except StructureError as error:  # say which input it was (the encoder does not know)
            raise StructureError(f"{what}: {error}") from None

    def check_inputs(
        self,
        structure: Any,
        exemplar: Any,
        exemplar_structure: Any = None,
        output_type: str = "pil",
        callback_on_level_end: LevelCallback | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        patchmatch_iterations: int | None = None,
        is_interrupted: Callable[[], bool] | None = None,
    ) -> None:
        """Check the arguments of :meth:`__call__` before any work; raises ``ValueError`` naming the problem.

        Only checks (inputs are read and encoded later, where their own errors name them): the
        required inputs, batch lengths (one exemplar for all structures or one each; likewise
        exemplar structures; one generator or one per structure), whether the exemplar's structure
        can be extracted when it is omitted, the output type, the callback, the iteration count and the interrupt check.
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if structure is None:
            raise ValueError("structure is required (a label map, keypoints, an edge map, …)")
        if exemplar is None:
            raise ValueError("exemplar is required (the photo whose appearance to use)")
        structures, exemplars = self._as_batch(structure, "structure"), self._as_batch(exemplar, "exemplar")
        if len(exemplars) not in (1, len(structures)):
            raise ValueError(f"got {len(structures)} structures but {len(exemplars)} exemplars (give one or as many)")
        if exemplar_structure is not None:
            count = len(self._as_batch(exemplar_structure, "exemplar_structure"))
            one_exemplar = len(exemplars) == 1 or all(e is exemplars[0] for e in exemplars)
            if count != max(len(exemplars), len(structures)) and not (count == 1 and one_exemplar):
                raise ValueError(
                    f"got {max(len(exemplars), len(structures))} exemplars but {count} exemplar structures"
                )
        elif self.structure_encoder is None:
            raise ValueError(
                "exemplar_structure is required: this pipeline has no task set, so the exemplar's label "
                "cannot be extracted from the photo"
            )
        if isinstance(generator, (list, tuple)) and len(generator) != len(structures):
            raise ValueError(f"got {len(generator)} generators for a batch of {len(structures)} (give one, or one per item)")
        if patchmatch_iterations is not None and (
            isinstance(patchmatch_iterations, bool) or not isinstance(patchmatch_iterations, int) or patchmatch_iterations < 1
        ):
            raise ValueError(f"patchmatch_iterations must be a whole number ≥ 1, got {patchmatch_iterations!r}")
        if is_interrupted is not None and not callable(is_interrupted):
            raise ValueError(f"is_interrupted must be callable with no arguments (e.g. event.is_set), got {type(is_interrupted).__name__}")
        if callback_on_level_end is not None and not callable(callback_on_level_end):
            raise ValueError(
                f"callback_on_level_end must be callable as (pipe, level, warp) or (pipe, level, warp, callback_kwargs), got {type(callback_on_level_end).__name__}"
            )

    def _as_batch(self, value: Any, what: str) -> list[Any]:
        """One input argument as a list of items: a 4-D tensor's rows, a list (unless the encoder reads it as one
        item, e.g. one pose's keypoints), else ``[value]``."""
        if isinstance(value, torch.Tensor) and value.dim() == 4:
            return list(value)
        if isinstance(value, list) and not (self.structure_encoder is not None and self.structure_encoder.is_single(value)):
            if not value:
                raise ValueError(f"{what} is an empty batch")
            return value
        return [value]

    def _batch_inputs(
        self, structure: Any, exemplar: Any, exemplar_structure: Any
    ) -> tuple[list[Any], list[Any], list[Any] | None]:
        """Per-item lists of checked inputs (:meth:`check_inputs`); one exemplar serves the whole batch."""
        structures, exemplars = self._as_batch(structure, "structure"), self._as_batch(exemplar, "exemplar")
        if len(exemplars) == 1 and len(structures) > 1:
            exemplars = exemplars * len(structures)
        if exemplar_structure is None:
            return structures, exemplars, None
        exemplar_structures = self._as_batch(exemplar_structure, "exemplar_structure")
        if len(exemplar_structures) == 1 and len(exemplars) > 1:
            exemplar_structures = exemplar_structures * len(exemplars)
        return structures, exemplars, exemplar_structures

    def _exemplar_structure_from_photo(self, exemplar: Any, index: int) -> Any:
        photo = self.image_processor.to_photo(exemplar, f"exemplar[{index}]")
        try:
            return self.structure_encoder.extract(photo)
        except (StructureError, BackendMissingError, ModelUnavailableError) as error:
            raise StructureError(
                f"exemplar[{index}] came without exemplar_structure and its structure cannot be extracted from "
                f"the photo ({error}); pass exemplar_structure="
            ) from (None if isinstance(error, StructureError) else error)

    # ------------------------------------------------------------------ exemplar suggestions

    @torch.no_grad()
    def suggest_exemplars(
        self,
        structure: Any,
        exemplars: Any,
        exemplar_structures: Any = None,
        *,
        height: int | None = None,
        width: int | None = None,
        top_k: int | None = None,
    ) -> list[ExemplarSuggestion]:
        """Rank a gallery of exemplars by how well the correspondence network matches each to ``structure``.

        Uses the network's own dense level (H/8×W/8, the level that attends to every exemplar
        position): for each structure position p, the best raw match score
        max_q ⟨θ(p), φ(q)⟩ over the exemplar's positions q (a cosine similarity of the
        domain-aligned matching features; no temperature or softmax, which would make every
        row sum to one and hide how good the best match is). The exemplar's score is the mean
        over p: high when every part of the structure finds a similar part somewhere in the
        exemplar. No extra model.

        Args:
            structure: one structure, in any form ``__call__`` accepts (or a photo, where the
                task's encoder can extract its structure).
            exemplars: the gallery: a list of photos (or one B×3×H×W tensor in [-1, 1]).
            exemplar_structures: their structures (a list as long as ``exemplars``; None
                entries are extracted from the photo); omitted: all extracted.
            height, width: working size (multiples of 32); default the model's resolution.
            top_k: return only the best ``top_k``.

        Returns:
            :class:`ExemplarSuggestion` (gallery index, score), best first (ties: lower index first).
        """
        if structure is None:
            raise ValueError("structure is required")
        if isinstance(structure, torch.Tensor) and structure.dim() == 4:
            if structure.shape[0] != 1:
                raise ValueError(f"suggest_exemplars ranks a gallery for one structure, got a batch of {structure.shape[0]}")
            structure = structure[0]
        gallery = list(exemplars) if isinstance(exemplars, (list, tuple)) or (
            isinstance(exemplars, torch.Tensor) and exemplars.dim() == 4
        ) else [exemplars]
        if not gallery:
            raise ValueError("exemplars is an empty gallery")
        if exemplar_structures is None:
            gallery_structures = [None] * len(gallery)
        else:
            gallery_structures = list(exemplar_structures) if isinstance(exemplar_structures, (list, tuple)) or (
                isinstance(exemplar_structures, torch.Tensor) and exemplar_structures.dim() == 4
            ) else [exemplar_structures]
            if len(gallery_structures) != len(gallery):
                raise ValueError(f"got {len(gallery)} exemplars but {len(gallery_structures)} exemplar structures")
        if any(s is None for s in gallery_structures) and self.structure_encoder is None:
            raise ValueError(
                "exemplar_structures are required: this pipeline has no task set, so exemplar labels cannot be "
                "extracted from the photos"
            )
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")

        size = self._working_size(height, width, [structure])
        encoder = self.structure_encoder
        prepare = encoder.prepare_exemplar if encoder is not None else None
        device, dtype = self._execution_device, self.correspondence.dtype
        label = self._encode_structure(structure, size, "structure")[None].to(device, dtype)
        chunk_scores: list[torch.Tensor] = []
        chunk = 4  # exemplars encoded together
        for start in range(0, len(gallery), chunk):
            items = range(start, min(start + chunk, len(gallery)))
            exemplar_batch = torch.stack(
                [self.image_processor.preprocess(gallery[i], size, prepare, f"exemplars[{i}]", self._input_dtype) for i in items]
            ).to(device, dtype)
            exemplar_labels = torch.stack([
                self._encode_structure(
                    self._exemplar_structure_from_photo(gallery[i], i) if gallery_structures[i] is None else gallery_structures[i],
                    size,
                    f"exemplar_structures[{i}]",
                )
                for i in items
            ]).to(device, dtype)
            with self._float32_precision():
                features = self.correspondence.encode(label.expand(len(items), -1, -1, -1), exemplar_batch, exemplar_labels)
                chunk_scores.append(best_correlation(features.theta[0], features.phi[0]).mean(dim=(1, 2)))
        scores: list[float] = torch.cat(chunk_scores).tolist()  # one host sync for the gallery, not one per chunk
        self.maybe_free_model_hooks()
        ranking = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [ExemplarSuggestion(i, scores[i]) for i in ranking[:top_k]]

    # ------------------------------------------------------------------ call

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        structure: Any,
        exemplar: Any,
        exemplar_structure: Any = None,
        *,
        height: int | None = None,
        width: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_warps: bool = False,
        match_input_size: bool = False,
        callback_on_level_end: LevelCallback | None = None,
        patchmatch_iterations: int | None = None,
        is_interrupted: Callable[[], bool] | None = None,
    ) -> CoCosNetPipelineOutput | tuple:
        """Synthesise images with ``structure``'s layout and ``exemplar``'s appearance.

        Args:
            structure: one item or a list (a batch). Per item: what the task's encoder
                reads (keypoints or an OpenPose file for poses, an ADE20k mask, an edge
                map or a photo for edges), or an encoded label tensor Cl×H×W in [0, 1]
                (B×Cl×H×W for a batch).
            exemplar: a photo (PIL image, path, uint8 H×W×3 array; scaled x/255·2−1) or
                a float tensor 3×H×W in [-1, 1]; one for the whole batch or one per item.
            exemplar_structure: the exemplar's own structure, same forms as ``structure``.
                When omitted, the task's encoder extracts it from the exemplar photo
                (edges; poses and masks with the photo backends, see
                ``docs/structure_from_photos.md``); without a task it is required.
            height, width: working size (multiples of 32); default: the model's resolution
                (or the size of encoded label tensors).
            output_type: ``"pil"``, ``"np"`` (B×H×W×3 in [0, 1]) or ``"pt"`` (B×3×H×W in [0, 1]).
            return_dict: return a :class:`CoCosNetPipelineOutput` rather than a tuple.
            generator: draws the PatchMatch propagation order per iteration (as the research
                code); without it the order is fixed (horizontal first) and outputs are deterministic.
                A list of generators, one per batch item, gives each item its own orders.
            return_warps: also return the warped exemplar per level.
            match_input_size: resize each output back to its structure image's size.
            callback_on_level_end: called after each level of the hierarchy, coarsest first (level 0
                at H/8, then H/4, H/2, H), with that level's warped exemplar (B×3×h×w in [-1, 1], on
                the device) — the hierarchical analogue of diffusers' ``callback_on_step_end``, e.g. to
                show the warps as they finish. ``callback_on_level_end(pipe, level, warp)``: its
                return value is ignored. Diffusers style, ``callback_on_level_end(pipe, level, warp,
                callback_kwargs)`` with ``callback_kwargs = {"warp": warp}`` returns a dict; a ``"warp"``
                in it (same shape) replaces that level's warp for the translator (the match itself,
                which seeds the next level, is unchanged).
            patchmatch_iterations: PatchMatch search + ConvGRU steps per level (default: the
                model's own ``correspondence.config.iterations``: 5 for the published CoCosNet v2,
                3 for the embedded demo model): the speed/quality dial, like diffusers'
                ``num_inference_steps``. Fewer is faster; README "Performance" has the table.
            is_interrupted: checked, with :attr:`interrupt`, after every PatchMatch iteration and every
                level; when either says so the call stops there and raises :class:`PipelineInterrupted`
                (no partial image: the translator needs every level). :attr:`interrupt` is the
                pipeline's own flag, diffusers style (``pipe._interrupt = True``, e.g. from
                ``callback_on_level_end``; reset when a call starts); ``is_interrupted`` is per call,
                for servers that share one pipeline between requests (e.g. ``event.is_set``).

        Examples:

        Returns:
            :class:`CoCosNetPipelineOutput` (or, with ``return_dict=False``, the tuple ``(images,)``,
            or ``(images, warps)`` with ``return_warps``): ``images`` in ``output_type`` (a list of
            PIL images, a B×H×W×3 array or a B×3×H×W tensor, values in [0, 1]), at the working size
            or, with ``match_input_size``, at each structure's size; ``warps`` the warped exemplar per
            level, coarsest first, in the same output type, or ``None``.
        """
        self.check_inputs(
            structure, exemplar, exemplar_structure, output_type, callback_on_level_end, generator, patchmatch_iterations,
            is_interrupted,
        )  # fmt: skip
        self._interrupt = False
        structures, exemplars, exemplar_structures = self._batch_inputs(structure, exemplar, exemplar_structure)
        size = self._working_size(height, width, structures)
        encoder = self.structure_encoder
        prepare = encoder.prepare_exemplar if encoder is not None else None

        labels = [self._encode_structure(s, size, _item("structure", i, len(structures))) for i, s in enumerate(structures)]
        exemplar_tensors = [
            self.image_processor.preprocess(e, size, prepare, f"exemplar[{i}]", self._input_dtype)
            for i, e in enumerate(exemplars)
        ]
        if exemplar_structures is None:
            exemplar_structures = [self._exemplar_structure_from_photo(e, i) for i, e in enumerate(exemplars)]
        exemplar_labels = [
            self._encode_structure(s, size, _item("exemplar structure", i, len(exemplar_structures)))
            for i, s in enumerate(exemplar_structures)
        ]

        device, dtype = self._execution_device, self.correspondence.dtype
        label = torch.stack(labels).to(device, dtype)
        exemplar_batch = torch.stack(exemplar_tensors).to(device, dtype)
        exemplar_label = torch.stack(exemplar_labels).to(device, dtype)

        if self.channels_last and dtype != torch.float64:
            for model in (self.correspondence, self.translator):  # oneDNN / cuDNN convs run faster NHWC
                model.to(memory_format=torch.channels_last)

        levels = len(self.correspondence.structure_aligner.decoder)
        with self.progress_bar(total=levels + 2) as progress, self._float32_precision():

            def check_interrupt(where: str) -> None:
                if self.interrupt or (is_interrupted is not None and is_interrupted()):
                    raise PipelineInterrupted(f"interrupted {where}")

            def level_end(level: int, warp: torch.Tensor) -> torch.Tensor | None:
                progress.update()
                replaced = None
                if callback_on_level_end is not None and with_kwargs:
                    returned = callback_on_level_end(self, level, warp, {"warp": warp}) or {}
                    replaced = returned.get("warp")
                elif callback_on_level_end is not None:
                    callback_on_level_end(self, level, warp)
                check_interrupt(f"after level {level}")
                return replaced

            with_kwargs = callback_on_level_end is not None and _takes_callback_kwargs(callback_on_level_end)

            features = self.correspondence.encode(label, exemplar_batch, exemplar_label)
            progress.update()
            check_interrupt("after the encoders")
            warps, _ = self.correspondence.match(
                features, exemplar_batch, generator, callback=level_end, iterations=patchmatch_iterations,
                on_iteration=lambda: check_interrupt("between PatchMatch iterations"),
            )  # fmt: skip
            del features  # θ/φ and the encoders' maps of every level: freed before the translator runs
            if device.type == "cpu":
                heap.before_translator(self.translator.dtype.itemsize)  # float32: the matching's freed heap back to the OS
            images = self.translator(label, warps)
            progress.update()
        self.maybe_free_model_hooks()
        if device.type == "cpu":
            heap.return_freed_memory()  # and the translator's, so an idle process does not keep the peak

        sizes = [_input_size(s) for s in structures] if match_input_size else [None] * len(structures)
        if match_input_size and len(set(sizes)) > 1 and output_type != "pil":
            raise ValueError("match_input_size with structures of different sizes needs output_type='pil'")
        output_images = self._postprocess(images, output_type, sizes)
        output_warps = [self.image_processor.postprocess(w, output_type) for w in warps] if return_warps else None
        if not return_dict:
            return (output_images, output_warps) if return_warps else (output_images,)
        return CoCosNetPipelineOutput(images=output_images, warps=output_warps)

    def _postprocess(self, images: torch.Tensor, output_type: str, sizes: list[tuple[int, int] | None]):
        if all(s is None for s in sizes) or output_type != "pil":
            return self.image_processor.postprocess(images, output_type, sizes[0])
        return [self.image_processor.postprocess(image[None], output_type, s)[0] for image, s in zip(images, sizes)]


@contextlib.contextmanager
def _quiet_diffusers():
    """diffusers' own "Couldn't connect to the Hub" log lines off while a Hub id loads (its error says it all)."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


def _input_size(structure: Any) -> tuple[int, int] | None:
    """(H, W) of an image-like structure input, else None."""
    if isinstance(structure, (str, os.PathLike)) and Path(structure).suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}:
        width, height = image_file_size(structure, "structure")
        return height, width
    if isinstance(structure, PIL.Image.Image):
        return structure.height, structure.width
    if isinstance(structure, (np.ndarray, torch.Tensor)) and structure.ndim >= 2:
        return tuple(structure.shape[-2:]) if isinstance(structure, torch.Tensor) else tuple(structure.shape[:2])
    return None


def _encoder_from_config(config: dict[str, Any]) -> StructureEncoder:
    """The structure encoder a saved ``config.structure_encoder`` describes (``{"task": …, options}``)."""
    try:
        task = get_task(config.get("task"), model=True)
    except ValueError as error:
        raise ValueError(f"structure_encoder: {error}") from None
    return task.encoder_class.from_config(config)
