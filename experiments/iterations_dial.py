"""The speed/quality dial ``pipe(..., patchmatch_iterations=N)``: seconds per N, and distance to the N = 5 image.

Seconds: the correspondence + translator forward at the published widths (random weights, as
``benchmarks/bench_inference.py``), median of ``--repeats``, per dtype. Distance: the parity fixture
model (the research code's architecture at reduced width, tests/fixtures/parity) on its own inputs,
mean |image_N − image_5| with images in [0, 1], per dtype.

    python experiments/iterations_dial.py --size 512 --dtypes float32 bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_inference import build, make_inputs  # noqa: E402
from pipeline_cocosnet.convert import convert_checkpoints  # noqa: E402

PARITY = ROOT / "tests" / "fixtures" / "parity"


def seconds(dtype: torch.dtype, size: int, iterations: int, repeats: int) -> float:
    correspondence, translator = build("fast", "cpu", dtype)
    label, exemplar, exemplar_label = make_inputs(1, size, "cpu", dtype)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            start = time.perf_counter()
            features = correspondence.encode(label, exemplar, exemplar_label)
            warps, _ = correspondence.match(features, exemplar, iterations=iterations)
            del features
            translator(label, warps)
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def fixture_images(dtype: torch.dtype, counts: list[int]) -> dict[int, torch.Tensor]:
    correspondence, translator = convert_checkpoints(
        PARITY / "official_Corr.safetensors", PARITY / "official_G.safetensors", dtype=dtype
    )
    with np.load(PARITY / "parity_inputs.npz") as data:
        label = torch.from_numpy(data["label"]).to(dtype) / 255
        label_ref = torch.from_numpy(data["label_ref"]).to(dtype) / 255
        exemplar = torch.from_numpy(data["exemplar"]).to(dtype) / 255 * 2 - 1
    images = {}
    with torch.inference_mode():
        features = correspondence.encode(label, exemplar, label_ref)
        for n in counts:
            warps, _ = correspondence.match(features, exemplar, iterations=n)
            images[n] = (translator(label, warps).double() + 1) / 2
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtypes", nargs="+", default=["float32"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    counts = [5, 4, 3, 2, 1]
    print(f"| iterations | " + " | ".join(f"{d} s ({args.size}²)" for d in args.dtypes)
          + " | " + " | ".join(f"{d}: mean abs to N=5 (fixture model)" for d in args.dtypes) + " |")
    print("|---|" + "---|" * (2 * len(args.dtypes)))
    times = {d: {n: seconds(getattr(torch, d), args.size, n, args.repeats) for n in counts} for d in args.dtypes}
    images = {d: fixture_images(getattr(torch, d), counts) for d in args.dtypes}
    for n in counts:
        cells = [f"{times[d][n]:.2f}" for d in args.dtypes]
        cells += [f"{(images[d][n] - images[d][5]).abs().mean().item():.4f}" for d in args.dtypes]
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
