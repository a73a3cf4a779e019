"""FLOP share of modules of CoCosNet v2 at the published widths (ngf 64, nef 32), random weights.

    python experiments/flop_share.py --size 512
    python experiments/flop_share.py --size 512 --modules structure_aligner.decoder.3 exemplar_aligner.decoder.3

An experiment script, not part of the package (results: docs/cpu-speed.md, "Quality"). Counts
``torch.utils.flop_counter`` FLOPs (convolutions and matrix products) of one forward of the
correspondence network and the translator at ``size``², batch 1, float32 on the ``meta`` device
(shapes only, nothing computed), and prints each encoder part's share of the total and the
share of the ``--modules`` named (prefix match on the module names under ``correspondence.``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_cocosnet.models import CoCosNetCorrespondence, CoCosNetTranslator  # noqa: E402


def count(size: int, device: str) -> tuple[dict[str, int], int]:
    """Per-module FLOPs (fully qualified names, prefixed by component) and the pipeline's total."""
    with torch.device(device):
        corr = CoCosNetCorrespondence(label_channels=151, nef=32)  # published: ADE20k, nef 32, spade_hidden 128
        trans = CoCosNetTranslator(label_channels=151, ngf=64)
    label = torch.zeros(1, 151, size, size, device=device)
    label[:, 0] = 1
    exemplar = torch.zeros(1, 3, size, size, device=device)
    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        warps = corr(label, exemplar, label).warps
        trans(label, warps)
    counts = {}
    for name, table in counter.get_flop_counts().items():
        counts[name] = sum(table.values())
    return counts, counts["Global"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="meta", help="meta (default: shapes only) or a real device")
    parser.add_argument("--modules", nargs="*", default=[])
    args = parser.parse_args(argv)
    counts, total = count(args.size, args.device)
    print(f"total {total / 1e9:.1f} GFLOP at {args.size}² (correspondence + translator, batch 1)")
    for name in sorted(counts):
        depth = name.count(".")
        if name != "Global" and depth <= 3 and ("encoder" in name or depth <= 1):
            print(f"  {name}: {counts[name] / 1e9:.2f} GFLOP, {counts[name] / total:.2%}")
    if args.modules:
        moved = 0
        for module in args.modules:
            key = f"CoCosNetCorrespondence.{module}"
            if key not in counts:
                parser.error(f"no module {key} (have e.g. {[k for k in counts if 'decoder' in k][:4]})")
            moved += counts[key]
        print(f"moved to float32: {moved / 1e9:.2f} GFLOP = {moved / total:.2%} of the total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
