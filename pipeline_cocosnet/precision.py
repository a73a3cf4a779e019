"""The float32 precision policy on CUDA: where TensorFloat-32 may be used (README, "Precision").

Ampere and later GPUs can run float32 convolutions and matrix products in TF32 (10 bits of
mantissa). The policy of this package:

* convolutions (encoders, SPADE, ConvGRU, translator): TF32 allowed by default — PyTorch's own
  default for cuDNN; set ``CoCosNetPipeline.tf32_convolutions = False`` for IEEE float32;
* correlations and every other matrix product (dense attention, candidate scores, warps): IEEE
  float32 always, even where a user enabled TF32 matmuls globally: at τ = 0.01 a correlation's
  rounding is amplified about 100× by the softmax;
* parity checks: IEEE float32 everywhere (:func:`ieee_float32`).

The pipeline applies the policy only inside its own calls (:func:`float32_precision`, a context
manager that restores the previous settings); importing the package changes no ``torch.backends``
setting. These settings have no effect on the CPU.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal

import torch

__all__ = ["float32_precision", "ieee_float32"]

Precision = Literal["ieee", "tf32"]


@contextlib.contextmanager
def float32_precision(convolutions: Precision = "tf32", matmul: Precision = "ieee") -> Iterator[None]:
    """Set cuDNN convolutions' and CUDA matmuls' float32 precision (``"ieee"`` or ``"tf32"``) for a block.

    Uses PyTorch's ``fp32_precision`` settings (the legacy ``allow_tf32`` flags must not be mixed
    with them) and restores the previous values on exit, also after an error.
    """
    conv, mm = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, mm.fp32_precision
    conv.fp32_precision, mm.fp32_precision = convolutions, matmul
    try:
        yield
    finally:
        conv.fp32_precision, mm.fp32_precision = saved


def ieee_float32() -> contextlib.AbstractContextManager[None]:
    """Full IEEE float32 for convolutions and matmuls: what parity checks on CUDA compare in."""
    return float32_precision(convolutions="ieee", matmul="ieee")
