"""Inference benchmark: seconds per stage and peak memory of CoCosNet v2, float32 and bf16 side by side.

Uses the published configuration (20 label channels, nef 32, ngf 64) with random weights,
so anyone can run it. On the CPU every case (implementation × size × batch × dtype) runs in its
own subprocess, so its peak RSS belongs to it alone; on CUDA the cases run in one process by
default (max allocated is reset per case; ``--isolate`` for subprocesses). Each case runs ``--warmup`` forwards, then reports the median (and min–max)
of ``--repeats`` timed ones. Components are cast to the dtype, as ``from_pretrained(dtype=…)``
does (no autocast), so the times are those of ``pipe(...)`` without pre/post-processing.

    python benchmarks/bench_inference.py                       # CPU: 256/512/1024, batch 1 and 4, float32 + bf16
    python benchmarks/bench_inference.py --quick               # 256², batch 1, one timed run (a smoke test)
    python benchmarks/bench_inference.py --sizes 512 --batch 1 --out benchmarks/results/cpu-512.md
    python benchmarks/bench_inference.py --device cuda        # a short lease: fast, 512/1024, fp32+bf16, one process
    python benchmarks/bench_inference.py --device cuda --sizes 512 1024 --batch 1 4 \\
        --dtypes float32 float16 bfloat16 --impl fast naive --isolate --json results.json

Implementations: ``fast`` is pipeline_cocosnet as shipped; ``naive`` is pipeline_cocosnet/reference/naive.py,
the same algorithm written the straightforward way (per-candidate loop, full N×N attention,
NCHW, one convolution per SPADE γ/β and GRU gate). The naive rewrite is NOT the research
code: it is about 2–3× slower than the research code itself (issue 14 measured the research
code at 512² at 32.2 s vs 21.4 s for ours in float32), so ratios against it overstate the gain.
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
    del features  # as pipe(...) does: freed before the translator, and the heap's free pages returned on CPU
    if label.device.type == "cpu":
        from pipeline_cocosnet.models import heap

        heap.before_translator(translator.dtype.itemsize)
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
    runs = []
    with torch.inference_mode():
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


def run_case_here(case: dict) -> dict:
    """Run ``case`` in this process (CUDA: peak memory is reset per case); an error becomes the case's result."""
    try:
        return worker(case)
    except Exception as error:  # e.g. out of memory at 1024²: report it and go on with the next case
        return {**case, "error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
    finally:
        if case["device"].startswith("cuda"):
            torch.cuda.empty_cache()


def cuda_lease_defaults(args: argparse.Namespace) -> None:
    """On CUDA, the options left unset get cases that fit a short device lease (15 minutes in all):
    the fast path in float32 and bf16, batch 1, 512² and 1024², all in this one process (no ~10 s
    interpreter start per case); ``--isolate`` runs each case in its own subprocess instead."""
    for key, value in dict(sizes=[512, 1024], batch=[1], dtypes=["float32", "bfloat16"], impl=["fast"]).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.isolate is None:
        args.isolate = False


def run_case(case: dict) -> dict:
    """Run ``case`` in a fresh interpreter (so peak memory is the case's own)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(case)], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**case, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: the column header of the straightforward rewrite: what it is, so nobody reads it as the research code
NAIVE_LABEL = "naive rewrite float32 (pipeline_cocosnet/reference/naive.py, not the research code)"


def _case_key(r: dict) -> tuple:
    return (r["device"], r["size"], r["batch"])


def table(results: list[dict]) -> str:
    """Markdown: per size × batch, one row per stage with each dtype's median seconds side by side.

    Columns: the fast implementation in each dtype (median, and min–max for the total), the
    speed-up of every further dtype over the first (float32), then the naive rewrite if it ran.
    The last row of each block is the peak memory of each case's process.
    """
    fast_dtypes = list(dict.fromkeys(r["dtype"] for r in results if r["impl"] == "fast"))
    has_naive = any(r["impl"] == "naive" for r in results)
    head = ["size", "batch", "stage", *(f"{d} s" for d in fast_dtypes)]
    head += [f"{d} speed-up vs {fast_dtypes[0]}" for d in fast_dtypes[1:]]
    if has_naive:
        head.append(NAIVE_LABEL)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in dict.fromkeys(_case_key(r) for r in results):
        group = [r for r in results if _case_key(r) == key]
        fast = {d: next((r for r in group if r["impl"] == "fast" and r["dtype"] == d), None) for d in fast_dtypes}
        naive = next((r for r in group if r["impl"] == "naive"), None)
        columns = [*fast.values(), *([naive] if has_naive else [])]
        stages = list(dict.fromkeys(n for r in columns if r and "stages" in r for n in r["stages"])) or ["total"]

        def cell(r: dict | None, stage: str) -> str:
            if r is None:
                return "–"
            if "error" in r:
                return f"error: {r['error']}"
            if stage not in r["stages"]:
                return "–"
            m = r["stages"][stage]
            return f"{m['median']:.3f}" + (f" ({m['min']:.2f}–{m['max']:.2f})" if stage == "total" else "")

        def ratio(r: dict | None, stage: str) -> str:
            base = fast[fast_dtypes[0]]
            if not (r and base and "stages" in r and "stages" in base and stage in r["stages"] and stage in base["stages"]):
                return "–"
            return f"{base['stages'][stage]['median'] / r['stages'][stage]['median']:.2f}×"

        for stage in stages:
            row = [str(key[1]), str(key[2]), stage, *(cell(fast[d], stage) for d in fast_dtypes)]
            row += [ratio(fast[d], stage) for d in fast_dtypes[1:]]
            if has_naive:
                row.append(cell(naive, stage))
            lines.append("| " + " | ".join(row) + " |")
        peaks = [f"{r['peak_mib']:.0f}" if r and "peak_mib" in r else "–" for r in columns[: len(fast_dtypes)]]
        peak_row = [str(key[1]), str(key[2]), "peak MiB" + (" (RSS)" if key[0] == "cpu" else " (allocated)"), *peaks]
        peak_row += [
            f"{fast[d]['peak_mib'] / fast[fast_dtypes[0]]['peak_mib']:.2f}× the memory"
            if fast[d] and fast[fast_dtypes[0]] and "peak_mib" in fast[d] and "peak_mib" in fast[fast_dtypes[0]] else "–"
            for d in fast_dtypes[1:]
        ]
        if has_naive:
            peak_row.append(f"{naive['peak_mib']:.0f}" if naive and "peak_mib" in naive else "–")
        lines.append("| " + " | ".join(peak_row) + " |")
    return "\n".join(lines)


def cpu_default_cases(args: argparse.Namespace) -> list[dict]:
    """The CPU cases: each size × batch in every dtype (float32 and bf16 by default) back to back.

    The naive rewrite runs in float32 at batch 1 for sizes up to ``--naive-max-size``.
    """
    dtypes = args.dtypes or ["float32", "bfloat16"]
    cases = []
    for size in args.sizes:
        for batch in args.batch:
            for dtype in dtypes:
                cases.append(dict(impl="fast", device=args.device, size=size, batch=batch, dtype=dtype))
            if "naive" in args.impl and batch == 1 and size <= args.naive_max_size:
                cases.append(dict(impl="naive", device=args.device, size=size, batch=batch, dtype="float32"))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, …")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 256 512 1024 (CUDA: 512 1024)")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="default: 1 4 (CUDA: 1)")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=None,
                        help="default: float32 bfloat16 (the first is the base of the speed-up columns)")
    parser.add_argument("--impl", nargs="+", choices=["fast", "naive"], default=None,
                        help="default: fast naive (CUDA: fast)")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="each case in its own subprocess (default on CPU, where peak RSS is per process)")
    parser.add_argument("--naive-max-size", type=int, default=512,
                        help="largest size the naive rewrite runs at (batch 1 only; 0: never)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per case (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards first")
    parser.add_argument("--quick", action="store_true",
                        help="256², batch 1, one warm-up and one timed forward, no naive rewrite (overrides the above)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.device.startswith("cuda"):
        cuda_lease_defaults(args)
    if args.quick:
        args.sizes, args.batch, args.repeats, args.warmup, args.impl = [256], [1], 1, 1, ["fast"]
    args.sizes, args.batch = args.sizes or [256, 512, 1024], args.batch or [1, 4]
    args.impl = args.impl or ["fast", "naive"]
    results = []
    for case in cpu_default_cases(args):
        case.update(repeats=args.repeats, warmup=args.warmup, threads=args.threads)
        results.append(run_case(case) if args.isolate is not False else run_case_here(case))
        total = results[-1].get("stages", {}).get("total", {}).get("median")
        done = f"{total:.2f} s" if total is not None else results[-1].get("error", "?")
        print(f"done: {case['impl']} {case['size']}² batch {case['batch']} {case['dtype']}: {done}", file=sys.stderr, flush=True)
    env = {"torch": torch.__version__, "device": args.device, "cpu": platform.processor() or platform.machine(),
           "cpu capability": torch.backends.cpu.get_cpu_capability(),
           "threads": args.threads or torch.get_num_threads(), "cpus": os.cpu_count()}
    if args.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
    text = (f"Median of {args.repeats} after {args.warmup} warm-up (seconds; total: median (min–max)), random "
            f"published-size weights; {', '.join(f'{k} {v}' for k, v in env.items())}.\n\n{table(results)}")
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
