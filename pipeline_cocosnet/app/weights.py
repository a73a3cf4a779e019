"""Which weights each demo tab uses, and loading them lazily (once) with clear messages when they are missing.

Sources, first match wins: ``--weights TASK=PATH_OR_HUB_ID`` on the command line, the
environment variable ``COCOSNET_WEIGHTS_<TASK>`` (e.g. ``COCOSNET_WEIGHTS_POSE_TO_BODY``),
the ``[weights]`` table of a config file (TOML or YAML), then each task's defaults
(``Task.weights``: the packaged demo weights for mask-to-image, the edge-to-face weights for
oil-portrait).

A value is a pipeline folder, a Hub repo id, ``release:NAME`` (the published release, e.g.
``release:deepfashionhd``: downloaded and converted on first use, cached on disk; see
:mod:`pipeline_cocosnet.release`) or, for pose-to-body, the research code's checkpoint folder
(``checkpoints/deepfashionHD``: converted once, cached on disk).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..demo_model import DEMO_MODEL, DEMO_ORIGIN_PREFIX
from ..hub import check_local_weights, is_checkpoint_folder
from ..tasks import TASKS as TASK_REGISTRY
from ..tasks import RESEARCH_TASK, get_task
from ..weights import RELEASE_PREFIX

__all__ = [
    "TASKS",
    "RELEASE_PREFIX",
    "DEMO_WEIGHTS",
    "WeightsUnavailable",
    "WeightsConfig",
    "PipelineStore",
    "env_var",
    "parse_weights_args",
    "read_config_file",
]

#: the demo's tabs, in display order (one per task: pipeline_cocosnet/tasks/)
TASKS = tuple(TASK_REGISTRY)
#: the name ``CoCosNetPipeline.from_pretrained`` loads the packaged procedural-scene model with, and how
#: that model's origin note starts (one set of constants: pipeline_cocosnet/demo_model.py)
DEMO_WEIGHTS, DEMO_NOTE = DEMO_MODEL, DEMO_ORIGIN_PREFIX


class WeightsUnavailable(RuntimeError):
    """A tab's weights are not configured or cannot be loaded; the message says what is missing and how to get it."""


def env_var(task: str) -> str:
    """The environment variable naming ``task``'s weights, e.g. ``COCOSNET_WEIGHTS_POSE_TO_BODY``."""
    return get_task(task).env_var


def _check_task(task: str, where: str) -> str:
    task = task.strip()
    if task not in TASKS:
        raise ValueError(f"{where}: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return task


def parse_weights_args(values: Iterable[str]) -> dict[str, str]:
    """``["pose-to-body=weights/df", …]`` → ``{"pose-to-body": "weights/df"}`` (later entries win)."""
    weights = {}
    for value in values:
        task, sep, source = value.partition("=")
        if not sep or not source.strip():
            raise ValueError(f"--weights {value!r}: expected TASK=PATH_OR_HUB_ID, TASK one of {', '.join(TASKS)}")
        weights[_check_task(task, f"--weights {value!r}")] = source.strip()
    return weights


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read an app config file (``.toml``, or ``.yaml``/``.yml`` with PyYAML installed).

    Recognised keys: a ``weights`` table ``{task: path_or_hub_id}``, and optional
    ``device``, ``dtype``, ``concurrency``, ``examples``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ValueError(f"reading {path} on Python 3.10 needs tomli (`pip install tomli`), or write it as YAML") from None

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"invalid TOML in {path}: {error}") from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"reading {path} needs PyYAML (`pip install pyyaml`), or write the config as TOML") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"invalid YAML in {path}: {error}") from None
    else:
        raise ValueError(f"config file {path}: expected a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a table/mapping at the top level")
    known = {"weights", "device", "dtype", "concurrency", "examples"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"config file {path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    weights = data.get("weights") or {}
    if not isinstance(weights, dict):
        raise ValueError(f"config file {path}: 'weights' must be a table TASK = PATH_OR_HUB_ID")
    data["weights"] = {_check_task(str(k), f"config file {path}"): str(v) for k, v in weights.items()}
    return data


@dataclass
class WeightsConfig:
    """Where each tab's weights come from (see the module docstring for the precedence)."""

    sources: dict[str, str] = field(default_factory=dict)
    #: where each source was configured ("--weights", an env var name, the config file, "default")
    origins: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(
        cls,
        cli: Mapping[str, str] | None = None,
        config: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        demo_default: bool = True,
    ) -> WeightsConfig:
        environ = os.environ if environ is None else environ
        sources, origins = {}, {}
        for task in TASKS:
            for origin, table in (("--weights", cli or {}), (env_var(task), {task: environ.get(env_var(task), "")}), ("config file", config or {})):
                value = (table.get(task) or "").strip()
                if value:
                    sources[task], origins[task] = value, origin
                    break
        for task in TASK_REGISTRY.values():
            if task.name in sources:
                continue
            shared = task.weights.shared_with
            if shared in sources:
                sources[task.name], origins[task.name] = sources[shared], f"{shared} weights"
            elif demo_default and task.weights.default is not None:
                sources[task.name], origins[task.name] = task.weights.default, "default"
        return cls(sources, origins)

    def describe(self, task: str) -> str:
        """One line (Markdown) for the tab: which weights it uses, or that none are configured."""
        source = self.sources.get(task)
        if source is None:
            return f"**No weights configured for {task}.** The tab shows the inputs; see below how to get weights."
        if source == DEMO_WEIGHTS and self.origins.get(task) == "default":
            return f"Weights: **{DEMO_NOTE}** (not trained on real data; configure real weights with `--weights {task}=…`)."
        if source.startswith(RELEASE_PREFIX):
            return (
                f"Weights: the published release `{source}` (from {self.origins.get(task, 'config')}): downloaded and "
                f"converted on the first translation (progress shows here), then cached on disk."
            )
        return f"Weights: `{source}` (from {self.origins.get(task, 'config')}), loaded on first use."


class PipelineStore:
    """Loads each tab's pipeline on first use and keeps it (failures are remembered too, with their message).

    Args:
        config: the resolved weights configuration.
        device: where pipelines run (``"cpu"``, ``"cuda"``, …).
        dtype: weights dtype (a ``torch.dtype``), default float32.
    """

    def __init__(self, config: WeightsConfig, device: str = "cpu", dtype: Any = None):
        from ..precision import resolve_device

        self.config = config
        self.device = resolve_device(device)  # "auto" resolved once, here
        self.dtype = dtype
        self._lock = threading.Lock()  # guards the two tables below, held only for a lookup
        self._source_locks: dict[str, threading.Lock] = {}  # one per source: a load (or a download) blocks only its tabs
        self._loaded: dict[str, Any] = {}  # source → pipeline, or the exception loading it raised

    def use(self, task: str, source: str, origin: str) -> None:
        """From now on ``task``'s tab uses ``source`` (e.g. after the app fetched the published weights)."""
        with self._lock:
            self.config.sources[task] = source
            self.config.origins[task] = origin

    def missing(self, task: str) -> str | None:
        """Why ``task``'s tab cannot translate, found without loading anything (no weights configured, or a
        local folder that does not exist); ``None`` when it may work. The same message :meth:`get` raises."""
        try:
            self._check_source(task)
        except WeightsUnavailable as error:
            return str(error)
        return None

    def _check_source(self, task: str) -> tuple[str, str, bool, bool]:
        """``(source, origin, is_local, is_release)`` of ``task``'s weights; :class:`WeightsUnavailable` when they
        cannot be had whatever happens next."""
        source = self.config.sources.get(task)
        if source is None:
            raise WeightsUnavailable(f"{task}: no weights configured. {get_task(task).weights.how_to_get}")
        origin = self.config.origins.get(task, "config")
        is_release = source.startswith(RELEASE_PREFIX)
        if not is_release and source != DEMO_WEIGHTS and not is_checkpoint_folder(Path(source).expanduser()):  # converted by load_pipeline
            try:
                check_local_weights(source)
            except OSError as error:
                raise WeightsUnavailable(f"{task}: {error} (weights from {origin}). {get_task(task).weights.how_to_get}") from None
        is_local = Path(source).expanduser().exists()
        return source, origin, is_local, is_release

    def get(self, task: str):
        """The pipeline for ``task``'s tab; raises :class:`WeightsUnavailable` with instructions when it cannot be had."""
        source, origin, is_local, is_release = self._check_source(task)
        spec = get_task(task)
        how_to_get, expected = spec.weights.how_to_get, spec.model_task
        if expected != RESEARCH_TASK and (is_release or (is_local and is_checkpoint_folder(Path(source).expanduser()))):
            raise WeightsUnavailable(
                f"{task}: `{source}` (from {origin}) is the published {RESEARCH_TASK} release or a research-code checkpoint "
                f"folder; this tab needs a pipeline folder with task {expected} (convert one with `cocosnet convert "
                f"--checkpoint-dir DIR --task {expected} --resolution N`). {how_to_get}"
            )
        with self._lock:
            source_lock = self._source_locks.setdefault(source, threading.Lock())
        with source_lock:  # one load per source, shared by tabs (edge-to-face and oil-portrait); other sources go on
            with self._lock:
                pipe = self._loaded.get(source)
            if pipe is None:
                pipe = self._load(source)
                with self._lock:
                    self._loaded[source] = pipe
            if isinstance(pipe, Exception) and is_release:
                with self._lock:
                    del self._loaded[source]  # a failed download is tried again on the next request
        if isinstance(pipe, Exception):
            if is_release:  # the release's own message says what failed and how to provide the files by hand
                what = f"cannot fetch `{source}` (from {origin}) ({type(pipe).__name__}: {pipe})"
            elif source == DEMO_WEIGHTS:
                what = f"the packaged demo weights are not available in this installation ({type(pipe).__name__}: {pipe})"
            elif is_local:
                what = f"cannot load the pipeline folder `{source}` (from {origin}) ({type(pipe).__name__}: {pipe})"
            else:  # the pipeline's own one-line Hub message (no such folder / offline / no such repo)
                what = f"{pipe} (weights from {origin})"
            raise WeightsUnavailable(f"{task}: {what}. {how_to_get}")
        if pipe.config.task != expected:
            raise WeightsUnavailable(
                f"{task}: the weights at `{source}` are a {pipe.config.task or 'task-less'} model, but this tab needs "
                f"a {expected} model. {how_to_get}"
            )
        return pipe

    def _load(self, source: str):
        """The pipeline at ``source`` on the configured device, or the exception that loading raised."""
        from ..weights import load_pipeline

        kwargs = {"dtype": self.dtype} if self.dtype is not None else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipe = load_pipeline(source, **kwargs)
            return pipe.to(self.device)
        except Exception as error:  # noqa: BLE001 - any load failure becomes the tab's explanation
            return error
