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


@pytest.mark.parametrize("native", [True, False])
def test_half_precision_by_name_says_when_the_cpu_emulates_it(monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    line = describe_dtype(torch.bfloat16, "bfloat16", "cpu")
    assert line == "bfloat16" if native else line.startswith("bfloat16 (emulated: this CPU has no AMX or AVX512-BF16")
    assert describe_dtype(torch.float32, "float32", "cpu") == "float32"
    assert describe_dtype(torch.bfloat16, "bfloat16", "cuda") == "bfloat16"


def test_unknown_dtype_names_the_accepted_values():
    with pytest.raises(ValueError, match="dtype must be auto, float32, float16, bfloat16; got 'half'"):
        resolve_dtype("half", "cpu")


def test_bf16_error_stays_within_2_5x_of_float32s():
    """bf16 outputs of the demo model are at most 2.5× as far from float64 as float32's.

    A regression guard: before θ/φ were projected in float32, bf16 was 2.3–2.8× float32 on these
    scenes; now 1.5–2.3× (docs/cpu-speed.md). The goal is 1.6× (not reached yet; not asserted here).

    Generated scenes (held-out seeds), each translated with another scene as exemplar,
    through ``pipe(...)`` as users call it; mean |difference| of the [0, 1] images.
    """
    from pipeline_cocosnet import DEMO_MODEL, CoCosNetPipeline
    from pipeline_cocosnet.training.data.scenes import make_scene

    pairs = [(make_scene(seed, (128, 128))[0], *make_scene(seed + 1, (128, 128))[::-1]) for seed in (5006, 5100, 5200)]
    masks, exemplars, exemplar_masks = (list(x) for x in zip(*pairs))

    def images(dtype: torch.dtype) -> torch.Tensor:
        pipe = CoCosNetPipeline.from_pretrained(DEMO_MODEL, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return torch.from_numpy(pipe(masks, exemplars, exemplar_masks, output_type="np").images).double()

    exact = images(torch.float64)
    error32 = (images(torch.float32) - exact).abs().mean(dim=(1, 2, 3))
    error16 = (images(torch.bfloat16) - exact).abs().mean(dim=(1, 2, 3))
    assert (error32 > 0).all()  # float32 is not exact: the comparison has a yardstick
    measured = f"mean |x − x_float64| per scene: float32 {error32.tolist()}, bf16 {error16.tolist()}"
    assert (error16 <= 2.5 * error32).all(), measured
