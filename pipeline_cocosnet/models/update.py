"""The ConvGRU refinement of PatchMatch offsets (docs/architecture.md §7.5), in RAFT's style.

Motion encoder (candidate probabilities + offsets) → separable ConvGRU → offset head
that predicts an additive update for every candidate's (row, col) offset. The offsets are
the 2K candidate offset maps (K row offsets, then K column offsets; RAFT calls its
single offset field "flow").
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv2d_activation, conv_activation


class MotionEncoder(nn.Module):
    """Encode the K candidate probabilities and the 2K offset maps into motion features.

    Returns the learned part (B×out×h×w); the GRU's input is [that, offsets], as in RAFT.
    """

    def __init__(self, num_candidates: int, out_channels: int = 32):
        super().__init__()
        self.convc1 = nn.Conv2d(num_candidates, 64, 1)
        self.convc2 = nn.Conv2d(64, 64, 3, padding=1)
        self.convf1 = nn.Conv2d(2 * num_candidates, 64, 7, padding=3)
        self.convf2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv = nn.Conv2d(128, out_channels, 3, padding=1)

    def forward(self, probs: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """probs: B×K×h×w candidate probabilities, offsets: B×2K×h×w → B×out×h×w."""
        c = conv_activation(self.convc2, conv_activation(self.convc1, probs, "relu"), "relu")
        f = conv_activation(self.convf2, conv_activation(self.convf1, offsets, "relu"), "relu")
        return conv_activation(self.conv, torch.cat([c, f], dim=1), "relu")


class SepConvGRU(nn.Module):
    """Separable ConvGRU: a 1×5 (horizontal) then a 5×1 (vertical) GRU update.

    Each half computes the plain GRU equations (docs/architecture.md §7.5)::

        z = σ(conv_z([h, x]))    r = σ(conv_r([h, x]))
        q = tanh(conv_q([r·h, x]))
        h = (1 − z)·h + z·q

    Fused for speed: z and r come from one convolution with the two weights stacked
    (:meth:`gates`), σ and tanh are the convolutions' post-ops (``conv2d_activation``), [h, x]
    is built once and its hidden part overwritten in place at inference, and the update is
    ``torch.lerp(h, q, z)``. ``tests/test_fast_paths.py`` checks the fused forward against the
    plain equations, with and without autograd.
    """

    def __init__(self, hidden_channels: int = 32, input_channels: int = 64):
        super().__init__()
        total = hidden_channels + input_channels
        for axis, kernel, pad in (("1", (1, 5), (0, 2)), ("2", (5, 1), (2, 0))):
            for gate in "zrq":
                self.add_module(f"conv{gate}{axis}", nn.Conv2d(total, hidden_channels, kernel, padding=pad))

    def gates(self, hx: torch.Tensor, axis: str) -> tuple[torch.Tensor, torch.Tensor]:
        """z = σ(conv_z([h, x])), r = σ(conv_r([h, x])): one convolution, as both read the same input."""
        convz, convr = getattr(self, f"convz{axis}"), getattr(self, f"convr{axis}")
        weight, bias = torch.cat([convz.weight, convr.weight]), torch.cat([convz.bias, convr.bias])
        return conv2d_activation(hx, weight, bias, convz.padding, "sigmoid").chunk(2, dim=1)

    def forward(self, h: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        """h: B×hidden×h×w and the input x (its parts, concatenated: B×input×h×w) → the new hidden state.

        The horizontal half runs first, then the vertical one.
        """
        # [h, x] is built once; at inference the hidden part is then overwritten in place
        # (r·h, then the new h), under autograd it is rebuilt
        inplace = not torch.is_grad_enabled()
        hx = torch.cat([h, *inputs], dim=1)
        x = hx[:, h.shape[1] :]
        for axis in "12":
            z, r = self.gates(hx, axis)
            hx = _with_hidden(hx, r * h, x, inplace)
            q = conv_activation(getattr(self, f"convq{axis}"), hx, "tanh")
            h = torch.lerp(h, q, z)  # (1 − z)·h + z·q
            if axis == "1":
                hx = _with_hidden(hx, h, x, inplace)
        return h


def _with_hidden(hx: torch.Tensor, hidden: torch.Tensor, x: torch.Tensor, inplace: bool) -> torch.Tensor:
    """[hidden, x] from [·, x]: written into ``hx`` when ``inplace``, else a new tensor."""
    if not inplace:
        return torch.cat([hidden, x], dim=1)
    hx[:, : hidden.shape[1]] = hidden
    return hx


class OffsetHead(nn.Module):
    """Hidden state → additive (Δrow, Δcol) for each of the K candidates (2K channels)."""

    def __init__(self, hidden_channels: int = 32, out_channels: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(hidden_channels, 64, 3, padding=1)
        self.conv2 = nn.Conv2d(64, out_channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(conv_activation(self.conv1, h, "relu"))


class UpdateBlock(nn.Module):
    """One GRU refinement step: (hidden, candidate probabilities, offsets) → (hidden, Δoffsets)."""

    def __init__(self, num_candidates: int = 16, hidden_channels: int = 32, motion_channels: int = 32):
        super().__init__()
        self.encoder = MotionEncoder(num_candidates, motion_channels)
        self.gru = SepConvGRU(hidden_channels, motion_channels + 2 * num_candidates)
        # named flow_head as in RAFT and the published checkpoints: it is part of the state-dict keys
        self.flow_head = OffsetHead(hidden_channels, 2 * num_candidates)

    def forward(
        self, hidden: torch.Tensor, probs: torch.Tensor, offsets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden: B×hidden×h×w, probs: B×K×h×w, offsets: B×2K×h×w (K row offsets then K column offsets).

        Returns the new hidden state and Δoffsets B×2K×h×w.
        """
        hidden = self.gru(hidden, self.encoder(probs, offsets), offsets)
        return hidden, self.flow_head(hidden)
