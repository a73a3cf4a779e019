"""CoCosNetPipeline: structure + exemplar → image, in the style of diffusers pipelines."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from huggingface_hub import create_repo, upload_folder

from .hub import check_local_weights, hub_errors
from .model_card import write_model_card
from .models import CoCosNetCorrespondence, CoCosNetTranslator
from .models.attention import best_correlation
from .models.inputs import check_size
from .processing.backends import BackendMissingError, ModelUnavailableError
from .processing.base import StructureEncoder, StructureError, get_encoder
from .processing.images import as_photo, exemplar_to_tensor, image_file_size, to_output

OUTPUT_TYPES = ("pil", "np", "pt")

#: the documented name of the embedded demo model (``CoCosNetPipeline.from_pretrained(DEMO_MODEL)``)
DEMO_MODEL = "demo"
#: how the demo model's ``config.origin`` starts (the app shows it as a note)
DEMO_ORIGIN_PREFIX = "demo weights trained on procedural scenes"


def demo_model_path() -> Path:
    """The folder of the embedded demo pipeline (mask-to-image, 128×128, trained on procedural
    landscape scenes in ADE20k class ids by this package's training code, NOT on ADE20k)."""
    return Path(__file__).resolve().parent / "weights" / "demo-scenes"


@dataclass
class CoCosNetPipelineOutput(BaseOutput):
    """Output of :class:`CoCosNetPipeline`.

    Attributes:
        images: the translated images: a list of PIL images, a B×H×W×3 array in [0, 1]
            or a B×3×H×W tensor in [0, 1], as ``output_type`` asked.
        warps: with ``return_warps=True``, the warped exemplar per level, coarsest
            first (H/8 … H), each in the same output type; otherwise ``None``.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    warps: list[Any] | None = None


@dataclass(frozen=True)
class ExemplarSuggestion:
    """One ranked gallery exemplar from :meth:`CoCosNetPipeline.suggest_exemplars`.

    Attributes:
        index: position of the exemplar in the gallery given.
        score: mean over structure positions of the best dense-level match score, in [-1, 1]
            (higher: every part of the structure finds a similar part in the exemplar).
    """

    index: int
    score: float


class CoCosNetPipeline(DiffusionPipeline):
    """Exemplar-based image translation with CoCosNet v2.

    Components: ``correspondence`` (:class:`CoCosNetCorrespondence`) and ``translator``
    (:class:`CoCosNetTranslator`). Config: ``task`` (which structure encoder turns user
    inputs into labels: ``"pose-to-body"``, ``"mask-to-image"``, ``"edge-to-face"``, or
    ``None`` for pre-encoded label tensors only), ``resolution`` ([H, W] the model was
    trained at), and model-card metadata (``license``, ``origin``).
    """

    model_cpu_offload_seq = "correspondence->translator"
    #: run the components' convolutions in channels-last layout (not for float64); set False to keep NCHW
    channels_last: bool = True

    def __init__(
        self,
        correspondence: CoCosNetCorrespondence,
        translator: CoCosNetTranslator,
        task: str | None = None,
        resolution: tuple[int, int] | list[int] = (512, 512),
        license: str = "other",
        origin: str = "",
    ):
        super().__init__()
        self.register_modules(correspondence=correspondence, translator=translator)
        self.register_to_config(task=task, resolution=list(resolution), license=license, origin=origin)
        if correspondence.config.label_channels != translator.config.label_channels:
            raise ValueError(
                f"correspondence takes {correspondence.config.label_channels} label channels but the translator "
                f"{translator.config.label_channels}: the components do not belong together"
            )
        encoder = self.structure_encoder
        if encoder is not None and encoder.channels != self.label_channels:
            raise ValueError(
                f"task {task!r} encodes structures into {encoder.channels} channels but the model takes "
                f"{self.label_channels}"
            )

    # ------------------------------------------------------------------ properties

    @property
    def label_channels(self) -> int:
        return self.correspondence.config.label_channels

    @property
    def structure_encoder(self) -> StructureEncoder | None:
        """The task's structure encoder, or ``None`` when the pipeline takes label tensors only.

        Assign one to configure it (e.g. ``pipe.structure_encoder = EdgeEncoder(align_faces=True)``
        or a pose encoder with a photo backend); its channel count must match the model's.
        """
        if getattr(self, "_structure_encoder", None) is not None:
            return self._structure_encoder
        if not self.config.task:
            return None
        kwargs = {"channels": self.label_channels} if self.config.task == "edge-to-face" else {}
        return get_encoder(self.config.task, **kwargs)

    @structure_encoder.setter
    def structure_encoder(self, encoder: StructureEncoder | None) -> None:
        if encoder is not None and encoder.channels != self.label_channels:
            raise ValueError(
                f"{type(encoder).__name__} produces {encoder.channels} channels but the model takes {self.label_channels}"
            )
        self._structure_encoder = encoder

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

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> None:
        """Save components (safetensors), ``model_index.json`` and our model card ``README.md``.

        ``push_to_hub=True`` then uploads the folder, card included, to ``repo_id`` (default: the
        folder's name), with diffusers' Hub arguments (``commit_message``, ``private``, ``token``,
        ``create_pr``). The card is written before anything is uploaded (diffusers' own push would
        upload its generic card).
        """
        hub = {key: kwargs.pop(key) for key in ("repo_id", "commit_message", "private", "token", "create_pr") if key in kwargs}
        super().save_pretrained(save_directory, push_to_hub=False, **kwargs)
        write_model_card(self, Path(save_directory) / "README.md")
        if push_to_hub:
            self._upload(save_directory, hub.pop("repo_id", Path(save_directory).resolve().name), **hub)

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
            return self._upload(folder, repo_id, commit_message, private, token, create_pr)

    @staticmethod
    def _upload(
        folder: str | os.PathLike,
        repo_id: str,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Create the Hub repo if needed and upload ``folder`` as it is; returns the repo id.

        Hub failures raise :class:`~pipeline_cocosnet.hub.HubError` in one line naming the repo.
        """
        with hub_errors(repo_id, "push"):
            repo_id = create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        with hub_errors(repo_id, "push"):
            upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                commit_message=commit_message or "Upload CoCosNet v2 pipeline",
                token=token,
                create_pr=create_pr,
            )
        return repo_id

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
        return encoder.encode(structure, size, dtype=dtype)

    @staticmethod
    def _as_batch(value: Any, what: str) -> list[Any]:
        if isinstance(value, torch.Tensor) and value.dim() == 4:
            return list(value)
        if isinstance(value, list) and not _is_point_list(value):  # a list of (x, y) / None is one pose
            if not value:
                raise ValueError(f"{what} is an empty batch")
            return value
        return [value]

    def check_inputs(
        self,
        structure: Any,
        exemplar: Any,
        exemplar_structure: Any,
        output_type: str,
    ) -> tuple[list[Any], list[Any], list[Any] | None]:
        """Normalise inputs to per-item lists and check what can be checked before any work."""
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if structure is None:
            raise ValueError("structure is required (a label map, keypoints, an edge map, …)")
        if exemplar is None:
            raise ValueError("exemplar is required (the photo whose appearance to use)")
        structures = self._as_batch(structure, "structure")
        exemplars = self._as_batch(exemplar, "exemplar")
        if len(exemplars) == 1 and len(structures) > 1:
            exemplars = exemplars * len(structures)
        if len(exemplars) != len(structures):
            raise ValueError(f"got {len(structures)} structures but {len(exemplars)} exemplars (give one or as many)")
        exemplar_structures = None
        if exemplar_structure is not None:
            exemplar_structures = self._as_batch(exemplar_structure, "exemplar_structure")
            if len(exemplar_structures) == 1 and len(exemplars) > 1 and all(e is exemplars[0] for e in exemplars):
                exemplar_structures = exemplar_structures * len(exemplars)
            if len(exemplar_structures) != len(exemplars):
                raise ValueError(
                    f"got {len(exemplars)} exemplars but {len(exemplar_structures)} exemplar structures"
                )
        elif self.structure_encoder is None:
            raise ValueError(
                "exemplar_structure is required: this pipeline has no task set, so the exemplar's label "
                "cannot be extracted from the photo"
            )
        return structures, exemplars, exemplar_structures

    def _exemplar_structure_from_photo(self, exemplar: Any, index: int) -> Any:
        photo = as_photo(exemplar, f"exemplar[{index}]")
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
        scores: list[float] = []
        chunk = 4  # exemplars encoded together
        for start in range(0, len(gallery), chunk):
            items = range(start, min(start + chunk, len(gallery)))
            exemplar_batch = torch.stack(
                [exemplar_to_tensor(gallery[i], size, prepare, f"exemplars[{i}]", self._input_dtype) for i in items]
            ).to(device, dtype)
            exemplar_labels = torch.stack([
                self._encode_structure(
                    self._exemplar_structure_from_photo(gallery[i], i) if gallery_structures[i] is None else gallery_structures[i],
                    size,
                    f"exemplar_structures[{i}]",
                )
                for i in items
            ]).to(device, dtype)
            features = self.correspondence.encode(label.expand(len(items), -1, -1, -1), exemplar_batch, exemplar_labels)
            scores += best_correlation(features.theta[0], features.phi[0]).mean(dim=(1, 2)).tolist()
        self.maybe_free_model_hooks()
        ranking = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [ExemplarSuggestion(i, scores[i]) for i in ranking[:top_k]]

    # ------------------------------------------------------------------ call

    @torch.no_grad()
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
        generator: torch.Generator | None = None,
        return_warps: bool = False,
        match_input_size: bool = False,
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
            return_warps: also return the warped exemplar per level.
            match_input_size: resize each output back to its structure image's size.
        """
        structures, exemplars, exemplar_structures = self.check_inputs(structure, exemplar, exemplar_structure, output_type)
        size = self._working_size(height, width, structures)
        encoder = self.structure_encoder
        prepare = encoder.prepare_exemplar if encoder is not None else None

        labels = [self._encode_structure(s, size, f"structure[{i}]") for i, s in enumerate(structures)]
        exemplar_tensors = [
            exemplar_to_tensor(e, size, prepare, f"exemplar[{i}]", self._input_dtype) for i, e in enumerate(exemplars)
        ]
        if exemplar_structures is None:
            exemplar_structures = [self._exemplar_structure_from_photo(e, i) for i, e in enumerate(exemplars)]
        exemplar_labels = [
            self._encode_structure(s, size, f"exemplar_structure[{i}]") for i, s in enumerate(exemplar_structures)
        ]

        device, dtype = self._execution_device, self.correspondence.dtype
        label = torch.stack(labels).to(device, dtype)
        exemplar_batch = torch.stack(exemplar_tensors).to(device, dtype)
        exemplar_label = torch.stack(exemplar_labels).to(device, dtype)

        if self.channels_last and dtype != torch.float64:
            for model in (self.correspondence, self.translator):  # oneDNN / cuDNN convs run faster NHWC
                model.to(memory_format=torch.channels_last)

        levels = len(self.correspondence.structure_encoder.decoder)
        with self.progress_bar(total=levels + 2) as progress:
            features = self.correspondence.encode(label, exemplar_batch, exemplar_label)
            progress.update()
            warps, _ = self.correspondence.match(
                features, exemplar_batch, generator, callback=lambda level: progress.update()
            )
            images = self.translator(label, warps)
            progress.update()
        self.maybe_free_model_hooks()

        sizes = [_input_size(s) for s in structures] if match_input_size else [None] * len(structures)
        if match_input_size and len(set(sizes)) > 1 and output_type != "pil":
            raise ValueError("match_input_size with structures of different sizes needs output_type='pil'")
        output_images = self._postprocess(images, output_type, sizes)
        output_warps = [to_output(w, output_type) for w in warps] if return_warps else None
        if not return_dict:
            return (output_images, output_warps) if return_warps else (output_images,)
        return CoCosNetPipelineOutput(images=output_images, warps=output_warps)

    @staticmethod
    def _postprocess(images: torch.Tensor, output_type: str, sizes: list[tuple[int, int] | None]):
        if all(s is None for s in sizes) or output_type != "pil":
            return to_output(images, output_type, sizes[0])
        return [to_output(image[None], output_type, s)[0] for image, s in zip(images, sizes)]


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


def _is_point_list(value: list) -> bool:
    """Whether ``value`` is keypoints — (x, y) pairs or None — rather than a batch of structures."""
    def is_point(item: Any) -> bool:
        if item is None:
            return True
        if isinstance(item, (tuple, list, np.ndarray)) and len(item) == 2:
            return all(isinstance(v, (int, float, np.integer, np.floating)) for v in item)
        return False

    return bool(value) and all(is_point(item) for item in value) and any(item is not None for item in value)
