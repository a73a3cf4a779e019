"""Train the same configuration with the published (frozen) and the learning ConvGRU, compare warps.

    python experiments/compare_gru.py --config configs/train_synthetic.yaml --max-steps 300

An experiment script, not part of the package: it uses only the package's public training API
(results and discussion: docs/training.md, "The learning ConvGRU").

Both runs share seeds, data and every setting but ``model.learn_gru``. The warp error is
the L1 between each level's warp and the pooled warp target, on a held-out batch of
scenes the training never sees (synthetic data with another seed), before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from torch.utils.data import default_collate

from pipeline_cocosnet.training.config import load_config
from pipeline_cocosnet.training.data import build_dataset
from pipeline_cocosnet.training.trainer import Trainer

__all__ = ["compare"]


def compare(config_path: str, max_steps: int, output_dir: str, overrides: list[str], held_out: int = 16) -> dict:
    """Run both modes; returns {mode: {"before": [...], "after": [...], "seconds": s, "train_log": [...]}}."""
    results = {}
    for learn in (False, True):
        config = load_config(config_path, overrides)
        config.set("model.learn_gru", learn)
        config.set("train.max_steps", max_steps)
        config.set("train.output_dir", str(Path(output_dir) / ("learn_gru" if learn else "published_gru")))
        held = dataclasses.replace(config.data, seed=config.data.seed + 1)
        data = build_dataset(held, config.model.label_channels)
        batch = default_collate([data[i] for i in range(min(held_out, len(data)))])
        trainer = Trainer(config)
        before = trainer.warp_errors(batch)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        after = trainer.warp_errors(batch)
        warp_weight = config.loss.warp or 1.0
        results["learn_gru" if learn else "published_gru"] = {
            "before": before,
            "after": after,
            "seconds": seconds,
            "train_log": [(row["step"], row.get("G_warp", float("nan")) / warp_weight) for row in trainer.history],
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--output-dir", default="runs/compare_gru")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    results = compare(args.config, args.max_steps, args.output_dir, args.overrides)
    print(f"warp L1 on held-out scenes, per level (coarsest first) and summed, after {args.max_steps} steps")
    for mode, r in results.items():
        fmt = lambda xs: " ".join(f"{x:.3f}" for x in xs) + f" | Σ {sum(xs):.3f}"  # noqa: E731
        print(f"{mode:14s} before {fmt(r['before'])}   after {fmt(r['after'])}   ({r['seconds']:.0f} s)")
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / "compare_gru.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
