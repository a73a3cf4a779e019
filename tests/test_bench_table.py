"""The benchmark's markdown table: dtypes side by side with speed-ups, peak memory, the naive rewrite labelled."""

from __future__ import annotations

from benchmarks.bench_inference import NAIVE_LABEL, table


def stages(total: float) -> dict:
    return {k: {"median": v, "min": v, "max": v} for k, v in {"encoders": total / 2, "translator": total / 4, "total": total}.items()}


def test_float32_and_bf16_side_by_side_with_ratios_and_peak_memory():
    results = [
        dict(impl="fast", device="cpu", size=256, batch=1, dtype="float32", stages=stages(8.0), peak_mib=1000),
        dict(impl="fast", device="cpu", size=256, batch=1, dtype="bfloat16", stages=stages(2.0), peak_mib=500),
        dict(impl="naive", device="cpu", size=256, batch=1, dtype="float32", stages=stages(16.0), peak_mib=2000),
        dict(impl="fast", device="cpu", size=256, batch=4, dtype="float32", error="out of memory"),
    ]
    lines = table(results).splitlines()
    assert lines[0] == f"| size | batch | stage | float32 s | bfloat16 s | bfloat16 speed-up vs float32 | {NAIVE_LABEL} |"
    assert "not the research code" in NAIVE_LABEL
    assert "| 256 | 1 | total | 8.000 (8.00–8.00) | 2.000 (2.00–2.00) | 4.00× | 16.000 (16.00–16.00) |" in lines
    assert "| 256 | 1 | encoders | 4.000 | 1.000 | 4.00× | 8.000 |" in lines
    assert "| 256 | 1 | peak MiB (RSS) | 1000 | 500 | 0.50× the memory | 2000 |" in lines
    assert any(line.startswith("| 256 | 4 | total | error: out of memory") for line in lines)
