"""Training configuration: typed sections read from YAML, overridable key by key.

Defaults are the published CoCosNet v2 hyper-parameters (DeepFashionHD release, docs/architecture.md §11).
A YAML file has the sections ``model``, ``data``, ``loss``, ``optim`` and ``train``;
``section.key=value`` strings (values parsed as YAML) override single keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

__all__ = [
    "ModelConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "ConfigError",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key."""


@dataclass
class ModelConfig:
    """Network sizes (release: nef 32, ngf 64, ndf 64, 2 discriminator scales of 4 layers)."""

    label_channels: int = 20
    nef: int = 32
    ngf: int = 64
    ndf: int = 64
    num_discriminators: int = 2
    discriminator_layers: int = 4
    #: hidden width of every SPADE modulation (release: 128; smaller for tiny test models)
    spade_hidden: int = 128
    iterations: int = 5
    temperature: float = 0.01
    #: let gradients reach the ConvGRU (off = the published behaviour, GRU frozen at its init)
    learn_gru: bool = False
    #: PatchMatch propagation order drawn at random per iteration (as the research code trains)
    random_propagation: bool = True
    #: pipeline folder (``cocosnet convert`` output or a previous run) to fine-tune from
    init_pipeline: Optional[str] = None
    #: published ``latest_net_D.pth`` (or a state dict of ours) to start the discriminator from
    init_discriminator: Optional[str] = None


@dataclass
class DataConfig:
    """Which dataset reader, where, and how exemplars are chosen (see ``training/data``)."""

    #: deepfashionhd | ade20k | edges | paired | synthetic | scenes
    kind: str = "synthetic"
    root: Optional[str] = None
    #: (H, W) the networks see; multiples of 32
    size: list[int] = field(default_factory=lambda: [512, 512])
    #: resize (square) to this side, then random-crop ``size`` (release: 550 → 512); None = no crop
    load_size: Optional[int] = None
    flip: bool = False
    #: list of training samples (e.g. DeepFashionHD train.txt); None = every file under root
    list_file: Optional[str] = None
    #: same-content pairs "target,exemplar[,exemplar…]" per line (deepfashion_self_pair.txt)
    pairs_file: Optional[str] = None
    #: retrieval lists "target,ref[,ref…]" per line (deepfashion_ref.txt)
    retrieval_file: Optional[str] = None
    #: probability of a retrieval exemplar (no warp loss) when a retrieval list is given (release: 0)
    retrieval_probability: float = 0.0
    #: self-supervised exemplar when no pair exists: geometric warp strength and colour jitter
    augment_rotation: float = 10.0
    augment_scale: float = 0.1
    augment_translation: float = 0.05
    augment_color: float = 0.2
    #: a malformed sample: "skip" (warn, naming its path, and use another) or "raise"
    on_error: str = "raise"
    #: ADE20k split folder name under images/ and annotations/
    split: str = "training"
    #: generic paired folder: how structure files are read (auto | index | image | tensor)
    structure_format: str = "auto"
    #: synthetic data
    num_samples: int = 64
    num_classes: int = 4
    #: scenes: probability of a same-palette, different-layout exemplar (else the warped, jittered target)
    scene_pair_probability: float = 0.0
    num_workers: int = 2
    seed: int = 0


@dataclass
class LossConfig:
    """Loss weights on G (docs/architecture.md §11 / research-code defaults) and the VGG19 weights file."""

    gan: float = 10.0
    gan_feature: float = 10.0
    vgg_feature: float = 10.0
    perceptual: float = 0.001
    contextual: float = 10.0
    domain_alignment: float = 10.0
    warp: float = 500.0
    warp_cycle: float = 1.0
    #: VGG19 layer of the perceptual MSE (release: relu4_2)
    perceptual_layer: str = "relu4_2"
    #: torchvision ``vgg19`` state dict or the research code's ``vgg19_conv.pth``
    vgg_weights: Optional[str] = None


@dataclass
class OptimConfig:
    """Adam with TTUR as released: G+Corr lr 5e-5, D lr 2e-4, betas (0, 0.9), G eps 1e-3."""

    lr_generator: float = 5e-5
    lr_discriminator: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.0, 0.9])
    eps_generator: float = 1e-3
    eps_discriminator: float = 1e-8


@dataclass
class RunConfig:
    """Run length, batch, precision, logging and checkpointing."""

    output_dir: str = "runs/cocosnet"
    #: per process (release: 16 on 8 GPUs = 2 per GPU)
    batch_size: int = 2
    max_steps: Optional[int] = None
    epochs: Optional[int] = None
    #: None: what accelerate was launched or configured with (`accelerate launch --gradient_accumulation_steps`,
    #: ACCELERATE_GRADIENT_ACCUMULATION_STEPS), else 1; a value here wins
    gradient_accumulation_steps: Optional[int] = None
    #: no | fp16 | bf16; None: what accelerate was launched or configured with (`accelerate launch
    #: --mixed_precision`, `accelerate config`, ACCELERATE_MIXED_PRECISION), else "no"; a value here wins
    mixed_precision: Optional[str] = None
    seed: int = 1234
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 2500
    #: keep this many accelerate checkpoints (None = all)
    checkpoints_total_limit: Optional[int] = 3
    #: None, "latest" or a checkpoint folder
    resume: Optional[str] = None
    #: experiment trackers, as accelerate's ``log_with``: one name or a list (tensorboard, wandb, trackio, aim,
    #: comet_ml, mlflow, clearml, dvclive, swanlab), "all" (every one installed) or "none". A requested tracker
    #: that is not installed is a warning, not an error; losses always go to losses.csv as well
    report_to: Union[str, list[str]] = "tensorboard"
    #: older configs: false drops tensorboard from report_to (use report_to instead)
    tensorboard: bool = True
    #: pipeline metadata
    task: Optional[str] = None
    license: str = "other"
    cpu: bool = False
    find_unused_parameters: bool = False


@dataclass
class TrainConfig:
    """The whole configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        config = cls()
        for section, entries in (values or {}).items():
            if not hasattr(config, section) or not dataclasses.is_dataclass(getattr(config, section)):
                known = ", ".join(f.name for f in dataclasses.fields(cls))
                raise ConfigError(f"unknown config section {section!r} (known: {known})")
            if not isinstance(entries, dict):
                raise ConfigError(f"config section {section!r} must be a mapping, got {type(entries).__name__}")
            for key, value in entries.items():
                config.set(f"{section}.{key}", value)
        return config

    def set(self, dotted: str, value: Any) -> None:
        """Set ``section.key`` to ``value`` (checked against the field's type)."""
        section_name, _, key = dotted.partition(".")
        section = getattr(self, section_name, None)
        if section is None or not dataclasses.is_dataclass(section) or not key:
            raise ConfigError(f"bad config key {dotted!r}: expected SECTION.KEY with SECTION one of model, data, loss, optim, train")
        fields = {f.name: f for f in dataclasses.fields(section)}
        if key not in fields:
            raise ConfigError(f"unknown config key {dotted!r}; {section_name} has: {', '.join(fields)}")
        setattr(section, key, _coerce(value, fields[key].type, dotted))


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    text = str(annotation)
    if value is None:
        if "Optional" in text or "None" in text:
            return None
        raise ConfigError(f"{key} cannot be null")
    try:
        if "list" in text:
            if not isinstance(value, (list, tuple)):
                if text.startswith(("Union[str,", "typing.Union[str,", "str |")):  # one name where a list may go
                    return str(value)
                raise TypeError
            inner = float if "float" in text else str if "list[str]" in text else int
            return [inner(v) for v in value]
        if "bool" in text:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if "int" in text:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if "float" in text:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if "str" in text:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: cannot use {value!r} (expected {text.replace('typing.', '')})") from None
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``"section.key=value"`` → (key, YAML-parsed value)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    return key.strip(), yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply ``section.key=value`` overrides."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"cannot parse {path} as YAML: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a mapping of sections")
    config = TrainConfig.from_dict(values)
    for item in overrides:
        config.set(*parse_override(item))
    return config
