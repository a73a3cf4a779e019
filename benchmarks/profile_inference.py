"""Per-operator CPU profile of one CoCosNet v2 forward (torch.profiler), float32 and bf16.

Published configuration (nef 32, ngf 64) with random weights, as ``bench_inference.py``.
One warm-up forward, then one profiled forward per dtype; prints a markdown table per
dtype of the operators with the most self CPU time (what costs time besides the
convolutions: norms, SPADE modulation, ConvGRU element-wise work, copies, gathers).

    python benchmarks/profile_inference.py --size 512 --dtypes float32 bfloat16 --out benchmarks/results/profile-512.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_inference import DTYPES, build, make_inputs  # noqa: E402


def profile_dtype(size: int, batch: int, dtype: torch.dtype, rows: int) -> tuple[str, float]:
    """The markdown table of the ``rows`` operators with the most self CPU time, and the profiled wall time."""
    correspondence, translator = build("fast", "cpu", dtype)
    label, exemplar, exemplar_label = make_inputs(batch, size, "cpu", dtype)

    def forward() -> torch.Tensor:
        return translator(label, correspondence(label, exemplar, exemplar_label).warps)

    with torch.inference_mode():
        forward()  # warm-up (oneDNN primitive caches)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            start = time.perf_counter()
            forward()
            wall = time.perf_counter() - start
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    lines = ["| operator | calls | self CPU s | share |", "|---|---|---|---|"]
    for e in events[:rows]:
        lines.append(f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e6:.3f} | {100 * e.self_cpu_time_total / total:.1f} % |")
    return "\n".join(lines), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["float32", "bfloat16"])
    parser.add_argument("--rows", type=int, default=25, help="operators per table")
    parser.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    args = parser.parse_args(argv)
    sections = [f"# CPU profile at {args.size}², batch {args.batch} (random weights, published sizes)\n",
                f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
                f"{torch.backends.cpu.get_cpu_capability()}; self CPU time per operator over one forward "
                "after a warm-up (profiler overhead included in the wall time).\n"]
    for name in args.dtypes:
        text, wall = profile_dtype(args.size, args.batch, DTYPES[name], args.rows)
        sections.append(f"## {name} (profiled forward: {wall:.2f} s wall)\n\n{text}\n")
        print(sections[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
