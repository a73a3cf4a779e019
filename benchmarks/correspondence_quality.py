"""Correspondence quality on held-out procedural scenes: how well the warp reproduces a known target.

Each pair is a generated landscape (``pipeline_cocosnet.training.data.scenes``, held-out
seeds) and its exemplar: the same scene under a known random affine warp and colour jitter
(``transformed_pair``). A perfect correspondence warps the exemplar back onto the target
*in the exemplar's colours*, so at every level we measure the L1 (pixel values in [-1, 1],
as the training warp loss) between the warped exemplar and that target average-pooled to
the level's resolution, against two baselines computed the same way:

* ``no warp``: the exemplar as it is (pooled);
* ``class mean``: the exemplar's per-class mean colour (by the exemplar's mask) painted by
  the target's mask (classes missing from the exemplar get its overall mean).

    python benchmarks/correspondence_quality.py                     # the embedded demo model
    python benchmarks/correspondence_quality.py --model runs/demo-scenes/pipeline --count 64 --json q.json
    python benchmarks/correspondence_quality.py --dtypes float32 bfloat16   # both, and their warp L1 ratio
    python benchmarks/correspondence_quality.py --iterations 5 4 3 2 1      # the speed/quality dial

The PatchMatch propagation order is the fixed one (no generator), so runs are deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_cocosnet import CoCosNetPipeline  # noqa: E402
from pipeline_cocosnet.training.data.scenes import transformed_pair  # noqa: E402

#: held-out scenes start here (training scenes use seeds data.seed·100003 + i, i < num_samples)
HELD_OUT_SEED = 7_000_000


def class_mean_painting(exemplar: torch.Tensor, exemplar_mask: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """3×H×W: per class of ``mask``, the mean colour of ``exemplar`` where ``exemplar_mask`` has that class."""
    out = exemplar.mean((1, 2), keepdim=True).expand_as(exemplar).clone()
    for cls in mask.unique():
        where = exemplar_mask == cls
        if where.any():
            colour = exemplar[:, where].mean(1)
            out[:, mask == cls] = colour[:, None]
    return out


def _pooled(x: torch.Tensor, size: int) -> torch.Tensor:
    factor = x.shape[-1] // size
    return F.avg_pool2d(x, factor) if factor > 1 else x


@torch.no_grad()
def evaluate(
    pipe: CoCosNetPipeline, count: int, size: int, seed: int, batch: int = 4, iterations: int | None = None, **transform
) -> dict:
    corr = pipe.correspondence
    device, dtype = pipe.device, corr.dtype
    names = ("warp", "no warp", "class mean")
    sums: dict[str, list[float]] = {}
    levels: list[int] = []
    start = time.perf_counter()
    for first in range(0, count, batch):
        pairs = [transformed_pair(seed + i, (size, size), **transform) for i in range(first, min(first + batch, count))]
        stack = {k: torch.stack([p[k] for p in pairs]) for k in pairs[0]}
        label, exemplar, exemplar_label = (stack[k].to(device, dtype) for k in ("label", "exemplar", "exemplar_label"))
        features = corr.encode(label, exemplar, exemplar_label)
        warps, _ = corr.match(features, exemplar, None, iterations=iterations)
        painted = torch.stack(
            [class_mean_painting(p["exemplar"], p["exemplar_mask"], p["mask"]) for p in pairs]
        )
        target = stack["target"]
        levels = [w.shape[-1] for w in warps]
        for name in names:
            sums.setdefault(name, [0.0] * len(warps))
        for i, warp in enumerate(warps):
            s = warp.shape[-1]
            goal = _pooled(target, s)
            candidates = {"warp": warp.float().cpu(), "no warp": _pooled(stack["exemplar"], s), "class mean": _pooled(painted, s)}
            for name in names:
                sums[name][i] += (candidates[name] - goal).abs().mean((1, 2, 3)).sum().item()
    return {
        "levels": [f"{s}x{s}" for s in levels],
        "l1": {name: [v / count for v in values] for name, values in sums.items()},
        "count": count,
        "size": size,
        "seed": seed,
        "transform": transform,
        "iterations": iterations or corr.config.iterations,
        "seconds": time.perf_counter() - start,
    }


def format_table(result: dict) -> str:
    levels = result["levels"]
    lines = [
        f"L1 to the target in the exemplar's colours (pixels in [-1, 1]; lower is better), "
        f"{result['count']} held-out scenes at {result['size']}×{result['size']}, seeds from {result['seed']}",
        "",
        "| | " + " | ".join(levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for name, values in result["l1"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help='a pipeline folder or "demo" (default)')
    parser.add_argument("--count", type=int, default=32, help="held-out scenes (default 32)")
    parser.add_argument("--size", type=int, default=None, help="working size (default: the model's resolution)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rotation", type=float, default=10.0, help="max rotation, degrees (default 10)")
    parser.add_argument("--scale", type=float, default=0.1, help="max zoom change (default 0.1)")
    parser.add_argument("--translation", type=float, default=0.1, help="max shift, fraction of the size (default 0.1)")
    parser.add_argument("--color", type=float, default=0.3, help="colour jitter strength (default 0.3)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float64", "float32", "bfloat16", "float16"],
                        help="weights dtypes to evaluate (default float32); the first is the base of the ratios")
    parser.add_argument("--iterations", type=int, nargs="+", default=[None],
                        help="PatchMatch iterations per level (pipe(..., patchmatch_iterations=N)); several: one table each")
    parser.add_argument("--json", default=None, help="also write the result(s) to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name in args.dtypes:
        pipe = CoCosNetPipeline.from_pretrained(args.model, dtype=getattr(torch, name))
        pipe.set_progress_bar_config(disable=True)
        if pipe.label_channels != 151:
            parser.error(f"{args.model} takes {pipe.label_channels} label channels; scenes need an ADE20k (151-channel) model")
        if pipe.channels_last and name != "float64":  # as pipe(...) runs them
            pipe.correspondence.to(memory_format=torch.channels_last)
        size = args.size or int(pipe.config.resolution[0])
        for iterations in args.iterations:
            result = evaluate(
                pipe, args.count, size, args.seed, args.batch, iterations,
                rotation=args.rotation, scale=args.scale, translation=args.translation, color=args.color,
            )
            result.update(model=args.model, origin=pipe.config.origin, dtype=name)
            results.append(result)
            print(f"{name}, {result['iterations']} PatchMatch iterations ({result['seconds']:.1f} s):\n{format_table(result)}\n")
    for other in results[1:]:
        base = results[0]
        ratios = [f"{b / a - 1:+.2%}" for a, b in zip(base["l1"]["warp"], other["l1"]["warp"])]
        print(f"warp L1, {other['dtype']} ({other['iterations']} it.) vs {base['dtype']} ({base['iterations']} it.) per level ({', '.join(base['levels'])}): {', '.join(ratios)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
