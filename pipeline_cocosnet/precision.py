"""Precision policy: the dtype a pipeline runs in when the user does not say, and TF32 on CUDA.

**Dtype default.** On CPUs with AMX tiles or AVX512-BF16 (most current Xeon hosts), oneDNN runs
bf16 convolutions several times faster than float32 (README, "CPU speed"); the matching itself
stays in float32 inside the models either way. Elsewhere bf16 is emulated and slower, so the
default there is float32. CUDA keeps float32 unless asked (its half-precision choice is the user's).

**TF32 on CUDA** (README, "Precision"). Ampere and later GPUs can run float32 convolutions and
matrix products in TF32 (10 bits of mantissa). The policy of this package:

* convolutions (encoders, SPADE, ConvGRU, translator): TF32 allowed by default — PyTorch's own
  default for cuDNN; set ``CoCosNetPipeline.tf32_convolutions = False`` for IEEE float32;
* correlations and every other matrix product (dense attention, candidate scores, warps): IEEE
  float32 always, even where a user enabled TF32 matmuls globally: at τ = 0.01 a correlation's
  rounding is amplified about 100× by the softmax;
* parity checks: IEEE float32 everywhere (:func:`ieee_float32`).

The pipeline applies the TF32 policy only inside its own calls (:func:`float32_precision`, a
context manager that restores the previous settings); importing the package changes no
``torch.backends`` setting. These settings have no effect on the CPU.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal

import torch

__all__ = [
    "DTYPE_NAMES",
    "cpu_has_native_bf16",
    "default_dtype",
    "describe_dtype",
    "float32_precision",
    "ieee_float32",
    "resolve_dtype",
    "resolve_device",
]

#: names accepted by ``--dtype`` (besides ``auto``)
DTYPE_NAMES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

Precision = Literal["ieee", "tf32"]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has AMX tiles or AVX512-BF16 (PyTorch's own CPU capability queries)."""
    for query in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, query, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:  # a build without the query's backend
            continue
    return False


def resolve_device(device: str | torch.device | None) -> str:
    """``"auto"`` (or None): CUDA when available, else the CPU; anything else as given (the one place "auto" is read)."""
    if device is None or str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _device_kind(device: str | torch.device) -> str:
    """``"cpu"``, ``"cuda"``, … of ``device`` (``"auto"`` resolved first)."""
    return torch.device(resolve_device(device)).type


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on a CPU with native bf16 (AMX or AVX512-BF16), float32 on other CPUs and on accelerators."""
    return torch.bfloat16 if _device_kind(device) == "cpu" and cpu_has_native_bf16() else torch.float32


def resolve_dtype(name: str | None, device: str | torch.device) -> torch.dtype:
    """``--dtype`` to a torch dtype: ``auto`` (or None) gives :func:`default_dtype` for ``device``.

    Raises ValueError naming the accepted values for anything else.
    """
    if name is None or name == "auto":
        return default_dtype(device)
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype must be auto, {', '.join(DTYPE_NAMES)}; got {name!r}")
    return DTYPE_NAMES[name]


def describe_dtype(dtype: torch.dtype, requested: str | None, device: str | torch.device = "cpu") -> str:
    """One line for logs: which dtype runs and why (e.g. 'bfloat16 (auto: CPU with AMX or AVX512-BF16)').

    Half precision asked for by name on a CPU without native bf16 says that it is emulated there: a 3×3
    convolution ran 5.7× slower in bf16 than in float32 on a 2-core AVX2 EPYC (docs/cpu-speed.md).
    """
    name = str(dtype).removeprefix("torch.")
    if requested in (None, "auto"):
        why = "CPU with AMX or AVX512-BF16" if dtype == torch.bfloat16 else "float32 unless the CPU has native bf16"
        return f"{name} (auto: {why})"
    if _device_kind(device) == "cpu" and dtype in (torch.bfloat16, torch.float16) and not cpu_has_native_bf16():
        return f"{name} (emulated: this CPU has no AMX or AVX512-BF16, so it runs several times slower than float32)"
    return name


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
