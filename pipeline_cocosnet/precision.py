"""The precision a pipeline runs in when the user does not say: bf16 where the CPU computes it natively.

On CPUs with AMX tiles or AVX512-BF16 (most current Xeon hosts), oneDNN runs bf16
convolutions several times faster than float32 (README, "CPU speed"); the matching itself
stays in float32 inside the models either way. Elsewhere bf16 is emulated and slower, so
the default there is float32. CUDA keeps float32 unless asked (its half-precision choice
is the user's).
"""

from __future__ import annotations

import torch

__all__ = ["DTYPE_NAMES", "cpu_has_native_bf16", "default_dtype", "describe_dtype", "resolve_dtype"]

#: names accepted by ``--dtype`` (besides ``auto``)
DTYPE_NAMES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


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


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on a CPU with native bf16 (AMX or AVX512-BF16), float32 on other CPUs and on accelerators."""
    kind = torch.device(device).type if str(device) != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.bfloat16 if kind == "cpu" and cpu_has_native_bf16() else torch.float32


def resolve_dtype(name: str | None, device: str | torch.device) -> torch.dtype:
    """``--dtype`` to a torch dtype: ``auto`` (or None) gives :func:`default_dtype` for ``device``.

    Raises ValueError naming the accepted values for anything else.
    """
    if name is None or name == "auto":
        return default_dtype(device)
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype must be auto, {', '.join(DTYPE_NAMES)}; got {name!r}")
    return DTYPE_NAMES[name]


def describe_dtype(dtype: torch.dtype, requested: str | None) -> str:
    """One line for logs: which dtype runs and why (e.g. 'bfloat16 (auto: CPU with AMX/AVX512-BF16)')."""
    name = str(dtype).removeprefix("torch.")
    if requested in (None, "auto"):
        why = "CPU with AMX or AVX512-BF16" if dtype == torch.bfloat16 else "float32 unless the CPU has native bf16"
        return f"{name} (auto: {why})"
    return name
