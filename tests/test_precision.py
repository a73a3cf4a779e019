"""The CPU precision default (bf16 where the CPU has it natively) and its overrides."""

from __future__ import annotations

import pytest
import torch

from pipeline_cocosnet.precision import cpu_has_native_bf16, default_dtype, describe_dtype, resolve_dtype


@pytest.mark.parametrize(
    "amx, avx512_bf16, expected",
    [(True, False, torch.bfloat16), (False, True, torch.bfloat16), (False, False, torch.float32)],
)
def test_auto_is_bf16_exactly_on_cpus_with_amx_or_avx512_bf16(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert cpu_has_native_bf16() == (expected == torch.bfloat16)
    assert default_dtype("cpu") == expected
    assert resolve_dtype("auto", "cpu") == expected
    assert resolve_dtype(None, "cpu") == expected
    assert describe_dtype(expected, "auto").startswith(str(expected).removeprefix("torch.") + " (auto: ")


def test_accelerators_default_to_float32_and_names_override(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert default_dtype("cuda") == torch.float32
    assert resolve_dtype("float32", "cpu") == torch.float32
    assert resolve_dtype("bfloat16", "cuda") == torch.bfloat16


def test_unknown_dtype_names_the_accepted_values():
    with pytest.raises(ValueError, match="dtype must be auto, float32, float16, bfloat16; got 'half'"):
        resolve_dtype("half", "cpu")
