"""Inference benchmark: time and peak memory per stage of CoCosNet v2, fast vs straightforward.

Uses the published configuration (20 label channels, nef 32, ngf 64) with random weights,
so anyone can run it. Every case (implementation × size × batch × dtype) runs in its own
subprocess, so peak memory (CUDA max allocated; CPU peak RSS) belongs to that case alone.

    python benchmarks/bench_inference.py                      # CPU: 256 and 512, batch 1, float32
    python benchmarks/bench_inference.py --device cuda --sizes 512 1024 --batch 1 4 \\
        --dtypes float32 float16 bfloat16 --json results.json

Implementations: ``fast`` is pipeline_cocosnet as shipped (chunked candidate scoring,
chunked dense attention, channels-last convolutions); ``naive`` is the same algorithm
written directly (pipeline_cocosnet/reference/naive.py: per-candidate loop, full N×N attention, one
convolution per SPADE γ/β and GRU gate, NCHW).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
PUBLISHED = dict(label_channels=20, nef=32, ngf=64)


def build(impl: str, device: str, dtype: torch.dtype, seed: int = 0):
    """Random-weight correspondence + translator in the published configuration."""
    from pipeline_cocosnet.reference.naive import naive_copy, plain_layers
    from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator

    torch.manual_seed(seed)
    correspondence = CoCosNetCorrespondence(label_channels=PUBLISHED["label_channels"], nef=PUBLISHED["nef"])
    translator = CoCosNetTranslator(label_channels=PUBLISHED["label_channels"], ngf=PUBLISHED["ngf"])
    if impl == "naive":
        correspondence, translator = naive_copy(correspondence), plain_layers(translator)
    models = [torch.nn.Module.to(m, device=device, dtype=dtype).eval() for m in (correspondence, translator)]
    if impl == "fast" and dtype != torch.float64:
        models = [m.to(memory_format=torch.channels_last) for m in models]
    return models


def make_inputs(batch: int, size: int, device: str, dtype: torch.dtype, seed: int = 0):
    """A random one-hot structure (blocky, like a part map), its exemplar and the exemplar's structure."""
    g = torch.Generator().manual_seed(seed)
    channels = PUBLISHED["label_channels"]

    def label():
        parts = torch.randint(0, channels, (batch, 1, size // 16, size // 16), generator=g)
        parts = torch.nn.functional.interpolate(parts.float(), size=(size, size), mode="nearest").long()
        return torch.zeros(batch, channels, size, size).scatter_(1, parts, 1.0)

    exemplar = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    return [t.to(device, dtype) for t in (label(), exemplar, label())]


def run_once(correspondence, translator, inputs, sync) -> tuple[dict[str, float], list[torch.Tensor], torch.Tensor]:
    """One end-to-end forward, timed per stage (seconds)."""
    label, exemplar, exemplar_label = inputs
    times: dict[str, float] = {}
    sync()
    start = last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        sync()
        now = time.perf_counter()
        times[name] = now - last
        last = now

    features = correspondence.encode(label, exemplar, exemplar_label)
    mark("encoders")
    warps, _ = correspondence.match(features, exemplar, callback=lambda level, warp: mark(f"level{level}"))
    image = translator(label, warps)
    mark("translator")
    times["total"] = last - start
    return times, warps, image


def worker(case: dict) -> dict:
    """Run one case in this process and return its measurements."""
    torch.set_num_threads(case.get("threads") or torch.get_num_threads())
    device, dtype = case["device"], DTYPES[case["dtype"]]
    correspondence, translator = build(case["impl"], device, dtype)
    inputs = make_inputs(case["batch"], case["size"], device, dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    autocast = torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype in (torch.float16, torch.bfloat16))
    runs = []
    with torch.inference_mode(), autocast:
        for i in range(case["warmup"] + case["repeats"]):
            if i == case["warmup"] and device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            times, _, image = run_once(correspondence, translator, inputs, sync)
            if i >= case["warmup"]:
                runs.append(times)
    stages = {
        name: {
            "median": statistics.median(r[name] for r in runs),
            "min": min(r[name] for r in runs),
            "max": max(r[name] for r in runs),
        }
        for name in runs[0]
    }
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB → MiB
    return {**case, "stages": stages, "peak_mib": peak, "finite": bool(torch.isfinite(image).all())}


def run_case(case: dict) -> dict:
    """Run ``case`` in a fresh interpreter (so peak memory is the case's own)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(case)], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**case, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    """Markdown table: median seconds per stage (min–max of the total), peak memory, naive/fast ratios."""
    levels = sorted({s for r in results if "stages" in r for s in r["stages"] if s.startswith("level")})
    head = ["impl", "size", "batch", "dtype", "encoders", *levels, "translator", "total (min–max)", "peak MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        key = (r["impl"], r["size"], r["batch"], r["dtype"])
        if "error" in r:
            lines.append("| " + " | ".join(map(str, key)) + f" | error: {r['error']} |")
            continue
        s = r["stages"]
        cells = [f"{s[n]['median']:.3f}" if n in s else "" for n in ["encoders", *levels, "translator"]]
        total = f"{s['total']['median']:.3f} ({s['total']['min']:.3f}–{s['total']['max']:.3f})"
        lines.append("| " + " | ".join([*map(str, key), *cells, total, f"{r['peak_mib']:.0f}"]) + " |")
    ratios = []
    for fast in results:
        naive = next((r for r in results if r["impl"] == "naive" and "stages" in r and "stages" in fast
                      and all(r[k] == fast[k] for k in ("size", "batch", "dtype", "device"))), None)
        if fast["impl"] == "fast" and naive is not None:
            speed = naive["stages"]["total"]["median"] / fast["stages"]["total"]["median"]
            memory = fast["peak_mib"] / naive["peak_mib"]
            ratios.append(f"- {fast['size']}² batch {fast['batch']} {fast['dtype']}: fast is {speed:.2f}× faster "
                          f"end to end; peak memory {memory:.2f}× the naive one")
    return "\n".join(lines + ([""] + ratios if ratios else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=None,
                        help="default: float32 on CPU; float32 float16 bfloat16 on CUDA")
    parser.add_argument("--impl", nargs="+", choices=["fast", "naive"], default=["fast", "naive"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    dtypes = args.dtypes or (["float32"] if args.device == "cpu" else ["float32", "float16", "bfloat16"])
    results = []
    for size in args.sizes:
        for batch in args.batch:
            for dtype in dtypes:
                for impl in args.impl:  # the two implementations back to back: their ratio is what matters
                    case = dict(impl=impl, device=args.device, size=size, batch=batch, dtype=dtype,
                                repeats=args.repeats, warmup=args.warmup, threads=args.threads)
                    results.append(run_case(case))
                    print(f"done: {impl} {size}² batch {batch} {dtype}", file=sys.stderr, flush=True)
    env = {"torch": torch.__version__, "device": args.device, "cpu": platform.processor() or platform.machine(),
           "threads": args.threads or torch.get_num_threads(), "cpus": os.cpu_count()}
    if args.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
