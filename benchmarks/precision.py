"""Effect of reduced precision on CoCosNet v2 outputs, against float32 (random published-size weights).

For each dtype, the components are cast to it (as ``from_pretrained(dtype=...)`` does); the
matching (correlations, softmax, index arithmetic) is promoted to float32 inside the models.
Reports max / mean absolute difference to float32 of each level's warp and of the image
(all in [-1, 1]), and of the image when the translator alone runs in the dtype on the
float32 warps (which isolates the translator from PatchMatch's sensitivity). float64 is
included as the yardstick: it shows how far float32 itself is from exact arithmetic.

    python benchmarks/precision.py --size 256                         # CPU: float64, bfloat16
    python benchmarks/precision.py --device cuda --size 512 --dtypes float64 float16 bfloat16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_inference import DTYPES, build, make_inputs  # noqa: E402


def outputs(device: str, dtype: torch.dtype, size: int, warps: list[torch.Tensor] | None = None):
    correspondence, translator = build("fast", device, dtype)
    label, exemplar, exemplar_label = make_inputs(1, size, device, dtype)
    with torch.inference_mode():
        found = correspondence(label, exemplar, exemplar_label).warps
        image = translator(label, found)
        given = translator(label, [w.to(dtype) for w in warps]) if warps is not None else image
    return [w.double().cpu() for w in found], image.double().cpu(), given.double().cpu()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["float64", "bfloat16"])
    args = parser.parse_args(argv)
    warps32, image32, _ = outputs(args.device, torch.float32, args.size)
    levels = [f"level{i}" for i in range(len(warps32))]
    head = ["dtype", *levels, "image", "translator on float32 warps"]
    print(f"max / mean |x − x_float32| at {args.size}², values in [-1, 1], device {args.device}")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name in args.dtypes:
        warps, image, given = outputs(args.device, DTYPES[name], args.size, [w.float() for w in warps32])
        diffs = [(a - b).abs() for a, b in zip([*warps, image, given], [*warps32, image32, image32])]
        print("| " + " | ".join([name, *(f"{d.max():.2e} / {d.mean():.2e}" for d in diffs)]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
