"""The ConvGRU refinement of PatchMatch offsets (SPEC §7, step 2), in RAFT's style.

Motion encoder (candidate probabilities + offsets) → separable ConvGRU → flow head
that predicts an additive update for every candidate's (row, col) offset.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


class MotionEncoder(nn.Module):
    """Encode the K candidate probabilities and the 2K offset maps into motion features."""

    def __init__(self, num_candidates: int, out_channels: int = 32):
        super().__init__()
        self.convc1 = nn.Conv2d(num_candidates, 64, 1)
        self.convc2 = nn.Conv2d(64, 64, 3, padding=1)
        self.convf1 = nn.Conv2d(2 * num_candidates, 64, 7, padding=3)
        self.convf2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv = nn.Conv2d(128, out_channels, 3, padding=1)

    def forward(self, probs: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        relu = functools.partial(F.relu, inplace=True)  # on fresh conv outputs: saves a copy each
        c = relu(self.convc2(relu(self.convc1(probs))))
        f = relu(self.convf2(relu(self.convf1(flow))))
        return torch.cat([relu(self.conv(torch.cat([c, f], dim=1))), flow], dim=1)


class SepConvGRU(nn.Module):
    """Separable ConvGRU: a 1×5 (horizontal) then a 5×1 (vertical) GRU update."""

    def __init__(self, hidden_channels: int = 32, input_channels: int = 64):
        super().__init__()
        total = hidden_channels + input_channels
        for axis, kernel, pad in (("1", (1, 5), (0, 2)), ("2", (5, 1), (2, 0))):
            for gate in "zrq":
                self.add_module(f"conv{gate}{axis}", nn.Conv2d(total, hidden_channels, kernel, padding=pad))

    def _step(self, h: torch.Tensor, x: torch.Tensor, axis: str) -> torch.Tensor:
        convz, convr, convq = (getattr(self, f"conv{gate}{axis}") for gate in "zrq")
        hx = torch.cat([h, x], dim=1)
        # the update and reset gates read the same input: one convolution for both
        gates = F.conv2d(hx, torch.cat([convz.weight, convr.weight]), torch.cat([convz.bias, convr.bias]), padding=convz.padding)
        z, r = torch.sigmoid(gates).chunk(2, dim=1)
        q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._step(self._step(h, x, "1"), x, "2")


class FlowHead(nn.Module):
    """Hidden state → additive (Δrow, Δcol) for each of the K candidates (2K channels)."""

    def __init__(self, hidden_channels: int = 32, out_channels: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(hidden_channels, 64, 3, padding=1)
        self.conv2 = nn.Conv2d(64, out_channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(h), inplace=True))


class UpdateBlock(nn.Module):
    """One GRU refinement step: (hidden, candidate probabilities, offsets) → (hidden, Δoffsets)."""

    def __init__(self, num_candidates: int = 16, hidden_channels: int = 32, motion_channels: int = 32):
        super().__init__()
        self.encoder = MotionEncoder(num_candidates, motion_channels)
        self.gru = SepConvGRU(hidden_channels, motion_channels + 2 * num_candidates)
        self.flow_head = FlowHead(hidden_channels, 2 * num_candidates)

    def forward(
        self, hidden: torch.Tensor, probs: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """probs: B×K×h×w, flow: B×2K×h×w (K row offsets then K column offsets)."""
        hidden = self.gru(hidden, self.encoder(probs, flow))
        return hidden, self.flow_head(hidden)
