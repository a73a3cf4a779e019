"""The trainable networks: correspondence + translator as one module, and the discriminator.

One ``forward`` of :class:`TrainingGenerator` per step runs everything the generator
losses need, so that DistributedDataParallel (via accelerate) sees a single forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..models import CoCosNetCorrespondence, CoCosNetTranslator
from .config import ModelConfig
from .discriminator import MultiScaleDiscriminator, map_published_discriminator_keys
from .losses import cycle_warp
from .spectral import apply_spectral_norm, init_weights_like_release

__all__ = ["GeneratorOutput", "TrainingGenerator", "build_generator", "build_discriminator"]


@dataclass
class GeneratorOutput:
    """Everything one generator forward produces for the losses.

    fake: B×3×H×W in [-1, 1]; warps: per level, coarsest first (B×3×H/8×W/8 … B×3×H×W);
    structure_features / image_features: the domain-aligned features of the label branch
    and of the exemplar branch run on (real image, label), coarsest first (image_features
    is None when not asked for); cycle: the level-0 warp warped back (B×3×H/8×W/8) or None.
    """

    fake: torch.Tensor
    warps: list[torch.Tensor]
    structure_features: list[torch.Tensor]
    image_features: Optional[list[torch.Tensor]]
    cycle: Optional[torch.Tensor]


class TrainingGenerator(nn.Module):
    """``correspondence`` + ``translator`` (both spectrally parametrized for training).

    ``forward(label, exemplar, exemplar_label, image=None, cycle=False)``: label and
    exemplar_label B×Cl×H×W in [0, 1], exemplar and image B×3×H×W in [-1, 1].
    """

    def __init__(self, correspondence: CoCosNetCorrespondence, translator: CoCosNetTranslator, random_propagation: bool = True, seed: int = 0):
        super().__init__()
        self.correspondence = correspondence
        self.translator = translator
        self.random_propagation = random_propagation
        #: draws the PatchMatch propagation order (a torch.Generator; "generator" here is the GAN's G network)
        self.propagation_rng = torch.Generator().manual_seed(seed)

    def forward(
        self,
        label: torch.Tensor,
        exemplar: torch.Tensor,
        exemplar_label: torch.Tensor,
        image: Optional[torch.Tensor] = None,
        cycle: bool = False,
    ) -> GeneratorOutput:
        corr = self.correspondence
        features = corr.encode(label, exemplar, exemplar_label)
        warps, _ = corr.match(features, exemplar, self.propagation_rng if self.random_propagation else None)
        fake = self.translator(label, warps)
        image_features = None
        if image is not None:
            image_features = corr.exemplar_aligner(torch.cat([image, label], dim=1))
        cycled = cycle_warp(features.theta[0], features.phi[0], warps[0], corr.config.temperature) if cycle else None
        return GeneratorOutput(fake, warps, features.structure, image_features, cycled)


def _component(cls, folder: str, subfolder: str, **overrides):
    model = cls.from_pretrained(folder, subfolder=subfolder)
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    if any(config.get(k) != v for k, v in overrides.items()):
        fresh = cls.from_config({**config, **overrides})
        fresh.load_state_dict(model.state_dict())
        model = fresh
    return model.train()


def build_generator(config: ModelConfig, seed: int = 0) -> TrainingGenerator:
    """Fresh networks (release init) or the components of ``config.init_pipeline``, parametrized for training.

    In the default (published) mode the PatchMatch/GRU weights are frozen: they receive
    no gradient there anyway. With ``learn_gru`` they train.
    """
    if config.init_pipeline:
        correspondence = _component(CoCosNetCorrespondence, config.init_pipeline, "correspondence", learn_gru=config.learn_gru)
        translator = _component(CoCosNetTranslator, config.init_pipeline, "translator")
        if correspondence.config.label_channels != config.label_channels:
            raise ValueError(
                f"model.label_channels is {config.label_channels} but {config.init_pipeline} takes "
                f"{correspondence.config.label_channels} label channels"
            )
        apply_spectral_norm(correspondence)
        apply_spectral_norm(translator)
    else:
        correspondence = CoCosNetCorrespondence(
            label_channels=config.label_channels,
            nef=config.nef,
            iterations=config.iterations,
            temperature=config.temperature,
            learn_gru=config.learn_gru,
            spade_hidden=config.spade_hidden,
        )
        translator = CoCosNetTranslator(label_channels=config.label_channels, ngf=config.ngf, spade_hidden=config.spade_hidden)
        for model in (correspondence, translator):
            apply_spectral_norm(model)
            init_weights_like_release(model)
    correspondence.patchmatch.requires_grad_(config.learn_gru)
    return TrainingGenerator(correspondence.train(), translator.train(), config.random_propagation, seed)


def build_discriminator(config: ModelConfig) -> MultiScaleDiscriminator:
    """The multi-scale discriminator (release init), optionally loaded from ``config.init_discriminator``."""
    disc = MultiScaleDiscriminator(config.label_channels, 3, config.ndf, config.discriminator_layers, config.num_discriminators)
    init_weights_like_release(disc)
    if config.init_discriminator:
        from ..convert import load_state_dict, load_strict

        state = map_published_discriminator_keys(load_state_dict(config.init_discriminator))
        load_strict(disc, state, "discriminator")
    return disc.train()
