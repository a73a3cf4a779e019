"""VGG19 features for the perceptual, feature-matching and contextual losses (no torchvision).

Weights come from a local file in either layout:

* torchvision's ``vgg19`` state dict (``features.0.weight`` …; ImageNet-normalised RGB input),
  e.g. https://download.pytorch.org/models/vgg19-dcbb9e9d.pth;
* the research code's ``vgg19_conv.pth`` (``conv1_1.weight`` …; Caffe-style BGR input in
  0..255 minus the mean), linked from the CoCosNet v2 README ("pretrained VGG model").

The widths are read off the file, so tests can use a narrow random VGG19.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VGG19Features", "VGGWeightsError", "VGG_LAYERS", "load_vgg19", "save_random_vgg19", "VGG_DOWNLOAD_HINT"]

#: conv names per block, in order (VGG19: 2, 2, 4, 4, 4 convs)
_BLOCKS = [["1_1", "1_2"], ["2_1", "2_2"], ["3_1", "3_2", "3_3", "3_4"], ["4_1", "4_2", "4_3", "4_4"], ["5_1", "5_2", "5_3", "5_4"]]
_CONVS = [name for block in _BLOCKS for name in block]
#: the losses go no deeper than relu5_2, so conv5_3 and conv5_4 are not built
_BUILT = _CONVS[: _CONVS.index("5_2") + 1]
#: torchvision ``features`` index of each conv (ReLUs and max-pools in between)
_TORCHVISION_INDEX = dict(zip(_CONVS, [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]))
#: the layers the losses use
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")

VGG_DOWNLOAD_HINT = (
    "download torchvision's ImageNet VGG19 (https://download.pytorch.org/models/vgg19-dcbb9e9d.pth) or the "
    "research code's vgg19_conv.pth (the 'pretrained VGG model' link in the microsoft/CoCosNet-v2 README) and "
    "set loss.vgg_weights (or --vgg-weights) to its path; with every VGG loss weight at 0 no file is needed"
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (0.40760392, 0.45795686, 0.48501961)


class VGGWeightsError(FileNotFoundError):
    """The VGG19 weight file is missing or not a VGG19 state dict."""


class VGG19Features(nn.Module):
    """VGG19 convolutions up to ``conv5_2`` (deeper ones unused) returning ReLU activations by name.

    ``forward(image, layers)`` takes B×3×H×W RGB in [-1, 1] and returns the requested
    activations (e.g. ``relu4_2``: B×8w×H/8×W/8) in ``layers`` order.
    ``input_style``: ``"torchvision"`` (RGB in [0, 1], ImageNet mean/std) or ``"caffe"``
    (BGR in 0..255 minus the mean, as the research code's ``vgg19_conv.pth`` expects).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 512), input_style: str = "torchvision"):
        super().__init__()
        if input_style not in ("torchvision", "caffe"):
            raise ValueError(f"input_style must be 'torchvision' or 'caffe', got {input_style!r}")
        self.input_style = input_style
        in_channels = 3
        for block, width in zip(_BLOCKS, widths):
            for name in block:
                if name in _BUILT:
                    self.add_module(f"conv{name}", nn.Conv2d(in_channels, width, 3, padding=1))
                in_channels = width
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        x = (image + 1) / 2
        if self.input_style == "torchvision":
            mean = x.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
            return (x - mean) / x.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        return (x.flip(1) - x.new_tensor(_CAFFE_BGR_MEAN).view(1, 3, 1, 1)) * 255

    def forward(self, image: torch.Tensor, layers: tuple[str, ...] | list[str] = VGG_LAYERS) -> list[torch.Tensor]:
        unknown = [l for l in layers if l.replace("relu", "") not in _BUILT]
        if unknown:
            raise ValueError(f"unknown VGG19 layers {unknown}; use relu1_1 … relu5_2")
        wanted = set(layers)
        last = max(_BUILT.index(l.replace("relu", "")) for l in layers)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(image)
        for name in _BUILT[: last + 1]:
            if name.endswith("_1") and name != "1_1":
                x = F.max_pool2d(x, 2)
            x = F.relu(getattr(self, f"conv{name}")(x))
            if f"relu{name}" in wanted:
                out[f"relu{name}"] = x
        return [out[l] for l in layers]


def _convert_layout(state: dict[str, torch.Tensor], path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Either layout → our ``conv1_1.weight`` names plus the input style it implies."""
    if "features.0.weight" in state:
        converted = {}
        for name, index in _TORCHVISION_INDEX.items():
            for kind in ("weight", "bias"):
                key = f"features.{index}.{kind}"
                if key in state:
                    converted[f"conv{name}.{kind}"] = state[key]
        return converted, "torchvision"
    if "conv1_1.weight" in state:
        return {k: v for k, v in state.items() if k.startswith("conv")}, "caffe"
    sample = ", ".join(list(state)[:4])
    raise VGGWeightsError(
        f"{path} is not a VGG19 state dict: expected torchvision's 'features.0.weight' or the research code's "
        f"'conv1_1.weight' keys, found {sample} …"
    )


def load_vgg19(path: str | os.PathLike | None, input_style: str | None = None) -> VGG19Features:
    """Build a frozen :class:`VGG19Features` from a weight file (layout detected from its keys)."""
    if path is None:
        raise VGGWeightsError(f"the VGG19 losses need ImageNet VGG19 weights but none were given: {VGG_DOWNLOAD_HINT}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise VGGWeightsError(f"VGG19 weights not found at {path}: {VGG_DOWNLOAD_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise VGGWeightsError(f"cannot read VGG19 weights {path}: {type(error).__name__}: {error}") from error
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise VGGWeightsError(f"{path} does not hold a state dict")
    state, style = _convert_layout(state, path)
    try:
        widths = tuple(state[f"conv{block[0]}.weight"].shape[0] for block in _BLOCKS)
    except KeyError as error:
        raise VGGWeightsError(f"{path}: VGG19 weights lack {error.args[0]}") from None
    model = VGG19Features(widths, input_style or style)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise VGGWeightsError(f"{path}: VGG19 weights lack {', '.join(missing[:4])}")
    misshaped = [k for k in expected if state[k].shape != expected[k].shape]
    if misshaped:
        raise VGGWeightsError(f"{path}: not VGG19-shaped at {', '.join(misshaped[:4])}")
    model.load_state_dict({k: state[k].float() for k in expected})
    return model


def save_random_vgg19(
    path: str | os.PathLike, widths: tuple[int, ...] = (64, 128, 256, 512, 512), layout: str = "torchvision", seed: int = 0
) -> Path:
    """Write randomly initialised VGG19 weights in ``layout`` ("torchvision" or "caffe") — for tests and smoke runs."""
    torch.manual_seed(seed)
    model = VGG19Features(widths)
    state = model.state_dict()
    if layout == "torchvision":
        state = {f"features.{_TORCHVISION_INDEX[k[4:7]]}.{k.split('.')[-1]}": v for k, v in state.items()}
    elif layout != "caffe":
        raise ValueError(f"layout must be 'torchvision' or 'caffe', got {layout!r}")
    path = Path(path)
    torch.save(state, path)
    return path
