"""Convert the published CoCosNet v2 checkpoints into our components (docs/architecture.md §9).

Reads ``latest_net_Corr.pth`` / ``latest_net_G.pth`` (``torch.load(weights_only=True)``,
never unpickling arbitrary objects) or the same state dicts as ``.safetensors``, folds
spectral normalisation, renames the keys and loads them strictly.

The files as the release ships them: ``latest_net_Corr.pth`` is a torch zip archive into
which ``latest_net_D.pth`` and ``latest_net_G.pth`` were appended as extra top-level
entries, which ``torch.load`` refuses ("file in archive is not in a subdirectory");
:func:`load_state_dict` reads only the archive's own records and warns about the rest.
Legacy (pre-zip, PyTorch < 1.6) files and DataParallel ``module.`` prefixes work too.
"""

from __future__ import annotations

import io
import os
import re
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Mapping

import torch

from .models import CoCosNetCorrespondence, CoCosNetTranslator
from .tasks import RESEARCH_TASK

__all__ = [
    "CheckpointError",
    "CheckpointWarning",
    "load_state_dict",
    "pick_checkpoint_pair",
    "find_checkpoint_pair",
    "fold_spectral_norm",
    "map_correspondence_keys",
    "map_translator_keys",
    "infer_config",
    "convert_state_dicts",
    "convert_checkpoints",
    "load_strict",
]

StateDict = dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match the architecture."""


class CheckpointWarning(UserWarning):
    """A checkpoint was read, but something in the file was skipped (the message names it)."""


_SPADE_KEYS = [(r"\.mlp_shared\.1\.", ".mlp_shared.")]

_CORRESPONDENCE_KEYS = [
    (r"^adaptive_model_seg\.", "structure_aligner."),
    (r"^adaptive_model_img\.", "exemplar_aligner."),
    (r"_aligner\.layer1\.0\.", "_aligner.conv_in."),
    (r"_aligner\.layer([2-5])\.0\.0\.", lambda m: f"_aligner.stages.{int(m[1]) - 2}.conv."),
    (r"_aligner\.layer([2-5])\.1\.model\.1\.", lambda m: f"_aligner.stages.{int(m[1]) - 2}.res.conv_0."),
    (r"_aligner\.layer([2-5])\.1\.model\.5\.", lambda m: f"_aligner.stages.{int(m[1]) - 2}.res.conv_1."),
    (r"_aligner\.layer([2-5])\.1\.relu\.", lambda m: f"_aligner.stages.{int(m[1]) - 2}.res.prelu."),
    (r"_aligner\.head_0\.", "_aligner.decoder.0."),
    (r"_aligner\.G_middle_([0-2])\.", lambda m: f"_aligner.decoder.{int(m[1]) + 1}."),
    (r"^(theta|phi)_([0-9])\.", lambda m: f"{m[1]}.{m[2]}."),
    (r"^patch_match\.initial_layer\.", "patchmatch.init_hidden."),
    (r"^patch_match\.refine_net\.", "patchmatch.update."),
    *_SPADE_KEYS,
]

_TRANSLATOR_KEYS = [
    (r"^fc\.", "conv_in."),
    (r"^head_0\.", "blocks.0."),
    (r"^G_middle_([01])\.", lambda m: f"blocks.{int(m[1]) + 1}."),
    (r"^up_([0-3])\.", lambda m: f"blocks.{int(m[1]) + 3}."),
    (r"^conv_img\.", "conv_out."),
    *_SPADE_KEYS,
]

# The residual blocks' PReLU is one module stored under two names (`relu` and `model.3`).
_SHARED_PRELU_ALIAS = re.compile(r"(.*layer[2-5]\.1\.)model\.3\.weight$")


def _one_line(error: BaseException) -> str:
    """``Type: message`` of an exception on one line (torch's messages span several)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}{'…' if len(text) > 300 else ''}"


def _own_records(path: Path) -> io.BytesIO | None:
    """The torch archive at ``path`` without foreign entries, or ``None`` when there are none.

    A torch zip archive keeps every record under one folder (``NAME/data.pkl``,
    ``NAME/data/0``, …; torch takes the first entry's folder as NAME). Entries elsewhere
    (the release's ``latest_net_D.pth``, ``latest_net_G.pth``) are dropped, with a
    :class:`CheckpointWarning` naming them; the records are copied into an in-memory zip
    (their CRCs are checked on the way) for ``torch.load``, so nothing else is read.
    """
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        if not entries:
            return None
        folder = entries[0].filename.split("/", 1)[0] + "/"
        foreign = [e.filename for e in entries if not e.filename.startswith(folder)]
        if not foreign:
            return None
        if not any(e.filename == folder + "data.pkl" for e in entries):
            raise CheckpointError(f"cannot read checkpoint {path}: a zip archive, but not a torch checkpoint (no {folder}data.pkl)")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as clean:
            for entry in entries:
                if entry.filename.startswith(folder):
                    clean.writestr(entry, archive.read(entry))
    shown = ", ".join(foreign[:6]) + (f", … ({len(foreign)} in all)" if len(foreign) > 6 else "")
    warnings.warn(
        f"{path.name}: read the checkpoint in {folder} and ignored {len(foreign)} other entr"
        f"{'y' if len(foreign) == 1 else 'ies'} of the archive ({shown})",
        CheckpointWarning,
        stacklevel=3,
    )
    buffer.seek(0)
    return buffer


def load_state_dict(path: str | os.PathLike) -> StateDict:
    """Read a state dict from a ``.pth``/``.pt`` (weights only) or ``.safetensors`` file.

    ``.pth`` files may be torch zip archives (foreign top-level entries are ignored with a
    :class:`CheckpointWarning`), legacy pre-zip files, or ``{"state_dict": …}`` wrappers; a
    DataParallel ``module.`` prefix is removed. Unreadable, truncated or non-tensor files
    raise :class:`CheckpointError` with a one-line message naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with path.open("rb") as file:
                is_zip_file = file.read(4) == b"PK\x03\x04"
            if is_zip_file and not zipfile.is_zipfile(path):
                raise CheckpointError(
                    f"cannot read checkpoint {path}: the zip archive is truncated or corrupt (no central directory; "
                    f"{path.stat().st_size} bytes — was the download interrupted?)"
                )
            source = _own_records(path) if is_zip_file else None
            state = torch.load(path if source is None else source, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as error:  # corrupt file, foreign pickle, truncated download…
        raise CheckpointError(f"cannot read checkpoint {path}: {_one_line(error)}") from error
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


_CHECKPOINT_NAME = re.compile(r"^(?P<epoch>.+)_net_(?P<net>\w+)\.pth$")


def pick_checkpoint_pair(names: Iterable[str], epoch: str = "latest", where: str = "the folder") -> tuple[str, str]:
    """Choose the ``<epoch>_net_Corr.pth`` and ``<epoch>_net_G.pth`` among relative paths ``names``.

    The research code's layout: ``checkpoints/NAME/latest_net_Corr.pth``, ``latest_net_G.pth``,
    ``latest_net_D.pth`` (ignored) and numbered epochs ``<N>_net_*.pth``. Both files must sit
    in one folder. ``epoch="latest"`` falls back to the highest numbered epoch when no
    ``latest_`` pair exists. Raises :class:`CheckpointError` naming what was found.

    Returns:
        (correspondence path, generator path), as given in ``names``.
    """
    pairs: dict[tuple[str, str], dict[str, str]] = {}
    found = []
    for name in names:
        match = _CHECKPOINT_NAME.match(PurePosixPath(name).name)
        if match:
            found.append(PurePosixPath(name).name)
            if match["net"] in ("Corr", "G"):  # D (the discriminator) and others are not needed
                pairs.setdefault((str(PurePosixPath(name).parent), match["epoch"]), {})[match["net"]] = name
    complete = {key: files for key, files in pairs.items() if len(files) == 2}
    chosen = [key for key in complete if key[1] == epoch]
    if not chosen and epoch == "latest":
        numbered = [key for key in complete if key[1].isdigit()]
        best = max((int(key[1]) for key in numbered), default=None)
        chosen = [key for key in numbered if int(key[1]) == best]
    if len(chosen) > 1:
        folders = ", ".join(sorted(folder for folder, _ in chosen))
        raise CheckpointError(f"{where} holds several {epoch} checkpoint pairs (in {folders}); point to one folder")
    if not chosen:
        found = sorted(found)
        epochs = sorted({key[1] for key in complete})
        raise CheckpointError(
            f"{where} has no {epoch}_net_Corr.pth + {epoch}_net_G.pth pair"
            + (f" (complete epochs: {', '.join(epochs)}; choose one with --epoch)" if epochs else "")
            + (f"; found only {', '.join(found)}" if found and not epochs else "")
            + ("" if found else "; expected the research code's checkpoint files <epoch>_net_Corr.pth and <epoch>_net_G.pth")
        )
    files = complete[chosen[0]]
    return files["Corr"], files["G"]


def find_checkpoint_pair(folder: str | os.PathLike, epoch: str = "latest") -> tuple[Path, Path]:
    """The correspondence and generator files of ``epoch`` in a research-code checkpoint folder.

    ``folder`` is laid out as the research code writes it (e.g. ``checkpoints/deepfashionHD``
    with ``latest_net_Corr.pth``, ``latest_net_G.pth``, ``latest_net_D.pth``); subfolders are
    searched too. The discriminator is ignored. See :func:`pick_checkpoint_pair`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no such folder: {folder}")
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*_net_*.pth") if p.is_file()]
    corr, generator = pick_checkpoint_pair(names, epoch, where=str(folder))
    return folder / corr, folder / generator


def fold_spectral_norm(state: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float64) -> StateDict:
    """Replace every ``X.weight_orig``/``X.weight_u``/``X.weight_v`` by ``X.weight = W/σ``.

    σ = uᵀ·W·v with the stored u and v (no power iteration), computed in float64 and
    returned in ``dtype`` (other tensors are cast to ``dtype`` too).
    """
    folded: StateDict = {}
    for key, value in state.items():
        if key.endswith((".weight_u", ".weight_v")):
            if key.rsplit(".", 1)[0] + ".weight_orig" not in state:
                raise CheckpointError(f"spectral-norm vector {key} without its weight_orig")
            continue
        if not key.endswith(".weight_orig"):
            folded[key] = value.to(dtype)
            continue
        base = key[: -len("_orig")]
        try:
            u, v = state[base + "_u"].double(), state[base + "_v"].double()
        except KeyError as error:
            raise CheckpointError(f"spectral-norm weight {key} lacks {error.args[0]}") from None
        weight = value.double()
        matrix = weight.reshape(weight.shape[0], -1)
        if u.shape != (matrix.shape[0],) or v.shape != (matrix.shape[1],):
            raise CheckpointError(
                f"spectral-norm vectors of {key} have shapes {tuple(u.shape)}, {tuple(v.shape)}; "
                f"expected ({matrix.shape[0]},), ({matrix.shape[1]},)"
            )
        folded[base] = (weight / torch.dot(u, matrix @ v)).to(dtype)
    return folded


def _rename(state: Mapping[str, torch.Tensor], rules) -> StateDict:
    renamed: StateDict = {}
    for key, value in state.items():
        new = key
        for pattern, replacement in rules:
            new = re.sub(pattern, replacement, new)
        renamed[new] = value
    return renamed


def map_correspondence_keys(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Published ``net_Corr`` keys (spectral norm folded) → :class:`CoCosNetCorrespondence` keys."""
    state = dict(state)
    for key in [k for k in state if _SHARED_PRELU_ALIAS.match(k)]:
        alias = state.pop(key)
        shared = _SHARED_PRELU_ALIAS.match(key)[1] + "relu.weight"
        if shared in state and not torch.equal(state[shared], alias):
            raise CheckpointError(f"{key} and {shared} should hold the same shared PReLU weight but differ")
        state.setdefault(shared, alias)
    return _rename(state, _CORRESPONDENCE_KEYS)


def map_translator_keys(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Published ``net_G`` keys (spectral norm folded) → :class:`CoCosNetTranslator` keys."""
    return _rename(state, _TRANSLATOR_KEYS)


def infer_config(corr: Mapping[str, torch.Tensor], translator: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Read label channels, nef and ngf off published state dicts (raw or folded)."""
    try:
        first = next(corr[k] for k in ("adaptive_model_seg.layer1.0.weight_orig", "adaptive_model_seg.layer1.0.weight") if k in corr)
        fc = translator["fc.weight"]
    except (StopIteration, KeyError):
        raise CheckpointError(
            "not a CoCosNet v2 checkpoint pair: expected adaptive_model_seg.layer1.0.weight_orig in the "
            "correspondence (net_Corr) file and fc.weight in the generator (net_G) file"
        ) from None
    return {"label_channels": first.shape[1], "nef": first.shape[0], "ngf": fc.shape[0] // 8}


def load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or mis-shaped key is an error naming it."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", … ({len(keys)} in all)" if len(keys) > 8 else "")
            problems.append(f"{label} keys: {shown}")
    if problems:
        raise CheckpointError(f"{what} checkpoint does not match the model ({'; '.join(problems)})")
    model.load_state_dict(state, strict=True)


def convert_state_dicts(
    corr: Mapping[str, torch.Tensor],
    translator: Mapping[str, torch.Tensor],
    *,
    label_channels: int | None = None,
    nef: int | None = None,
    ngf: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[CoCosNetCorrespondence, CoCosNetTranslator]:
    """Build both components from published state dicts. Unset widths are read off the weights."""
    found = infer_config(corr, translator)
    wanted = {"label_channels": label_channels, "nef": nef, "ngf": ngf}
    for name, value in wanted.items():
        if value is not None and value != found[name]:
            raise CheckpointError(
                f"--{name.replace('_', '-')} {value} does not match the checkpoint, which has {name} = {found[name]}"
            )
    correspondence = CoCosNetCorrespondence(label_channels=found["label_channels"], nef=found["nef"])
    generator = CoCosNetTranslator(label_channels=found["label_channels"], ngf=found["ngf"])
    torch.nn.Module.to(correspondence, dtype)  # cast before loading, so float64 keeps float64 weights
    torch.nn.Module.to(generator, dtype)
    load_strict(correspondence, map_correspondence_keys(fold_spectral_norm(corr, dtype)), "correspondence (net_Corr)")
    load_strict(generator, map_translator_keys(fold_spectral_norm(translator, dtype)), "translator (net_G)")
    return correspondence.eval(), generator.eval()


#: ``--variant`` names (diffusers' file naming ``diffusion_pytorch_model.<variant>.safetensors``) → dtype
VARIANTS = {"fp16": torch.float16, "bf16": torch.bfloat16}


def convert_checkpoints(
    corr_path: str | os.PathLike,
    translator_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    task: str | None = RESEARCH_TASK,
    resolution: tuple[int, int] = (512, 512),
    variant: str | None = None,
    origin: str | None = None,
    license: str = "other",
    dataset: str = "",
    **kwargs,
) -> tuple[CoCosNetCorrespondence, CoCosNetTranslator]:
    """Read and convert both components; with ``output_dir``, save them as a pipeline folder.

    The folder (``model_index.json``, ``correspondence/``, ``translator/`` in safetensors and a
    model card) loads with ``CoCosNetPipeline.from_pretrained``. ``task`` and ``resolution``
    default to the only published release (DeepFashionHD, :data:`~pipeline_cocosnet.tasks.RESEARCH_TASK`, 512×512).
    ``variant`` (``"fp16"`` or ``"bf16"``) also writes the weights in that precision under
    diffusers' variant naming, for ``from_pretrained(..., variant="fp16")``; the returned
    components keep ``dtype`` (float32 by default). ``origin``, ``license`` and ``dataset`` (what
    the weights were trained on) go to the model card (default origin: the two file names).
    """
    if variant is not None and variant not in VARIANTS:
        raise CheckpointError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    correspondence, translator = convert_state_dicts(load_state_dict(corr_path), load_state_dict(translator_path), **kwargs)
    if output_dir is not None:
        from .pipeline import CoCosNetPipeline

        origin = origin or (
            f"converted with `cocosnet convert` from the published CoCosNet v2 checkpoints "
            f"{Path(corr_path).name} and {Path(translator_path).name} (spectral norm folded, keys renamed)"
        )
        pipe = CoCosNetPipeline(
            correspondence, translator, task=task, resolution=resolution, origin=origin, license=license, dataset=dataset
        )
        pipe.save_pretrained(output_dir)
        if variant is not None:
            _save_variant(pipe, Path(output_dir), variant)
    return correspondence, translator


def _save_variant(pipe, output_dir: Path, variant: str) -> None:
    """Save ``pipe``'s weights cast to the variant's dtype as ``<component>/…<variant>.safetensors``.

    Saves copies, so ``pipe`` keeps its precision. A weight outside the variant's range
    (it would turn into ±inf) is an error naming it.
    """
    import copy

    dtype = VARIANTS[variant]
    for name in ("correspondence", "translator"):
        component = copy.deepcopy(getattr(pipe, name))
        torch.nn.Module.to(component, dtype)
        for key, value in component.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise CheckpointError(f"{name}.{key} does not fit in {variant} (values overflow); convert without --variant")
        component.save_pretrained(output_dir / name, variant=variant)
