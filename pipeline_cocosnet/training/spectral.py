"""Spectral normalisation for training, folded away for saving; the release's weight init.

Inference components hold plain weights W (= W_orig/σ folded). Training wraps every
:class:`~pipeline_cocosnet.models.layers.SNConv2d` with
``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per training
forward, as the research code), and :func:`folded_copy` turns a trained component back
into a plain one whose weights are W_orig/σ with σ = uᵀ·W_orig·v from the stored u, v.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ..models.layers import SNConv2d

__all__ = ["apply_spectral_norm", "folded_state_dict", "folded_copy", "init_weights_like_release"]

M = TypeVar("M", bound=nn.Module)


def apply_spectral_norm(model: nn.Module) -> int:
    """Parametrize the weight of every ``SNConv2d`` in ``model`` in place; returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, SNConv2d) and not parametrize.is_parametrized(module, "weight"):
            spectral_norm(module)
            count += 1
    return count


@torch.no_grad()
def folded_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict with every spectral-norm parametrization replaced by its folded weight.

    Uses the stored u, v (eval mode: no power iteration, nothing in ``model`` changes).
    """
    was_training = model.training
    model.eval()
    try:
        state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in k}
        for name, module in model.named_modules():
            if parametrize.is_parametrized(module, "weight"):
                state[f"{name}.weight" if name else "weight"] = module.weight.detach().clone()
    finally:
        model.train(was_training)
    return state


def folded_copy(model: M) -> M:
    """A fresh, plain (un-parametrized) instance of a diffusers component with folded weights, in eval mode."""
    fresh = type(model).from_config(model.config)
    state = folded_state_dict(model)
    nn.Module.to(fresh, next(iter(state.values())).dtype)
    fresh.load_state_dict(state, strict=True)
    return fresh.eval()


@torch.no_grad()
def init_weights_like_release(model: nn.Module, gain: float = 0.02) -> None:
    """The research code's init: Xavier-normal (gain 0.02) conv/linear weights, zero biases.

    As in the research code's GPU runs, spectrally normalised convs keep PyTorch's default
    weight init and only get their bias zeroed (there the init was written into the stale
    CPU copy that the old-style ``spectral_norm`` leaves in ``module.weight`` after ``.cuda()``).
    """
    for module in model.modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        if not (isinstance(module, SNConv2d) or parametrize.is_parametrized(module, "weight")):
            nn.init.xavier_normal_(module.weight, gain=gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
