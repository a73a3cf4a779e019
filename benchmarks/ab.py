"""A/B speed of the working tree against another commit, on this host, in one run.

Every speed claim in this project is a ratio measured here: hosts change between sessions (an
AMX Xeon, an AVX-512 Xeon, an AVX2-only EPYC), so absolute seconds from another day mean little.
BASE is checked out as a ``git worktree`` in a temporary folder; each measurement runs in a fresh
subprocess that imports the package from its own tree (``bench_inference.py --worker`` of that
tree), alternating A, B, A, B … so that drift of the machine hits both alike. Reported: per stage
the median seconds of each side and the ratio B/A (how many times faster the working tree is),
and the peak RSS of each side's processes.

    python benchmarks/ab.py b7472e3                               # 256² and 512², float32 (+ bf16 where native)
    python benchmarks/ab.py b7472e3 --sizes 512 --rounds 5 --out benchmarks/results/ab-512.md
    python benchmarks/ab.py b7472e3 --search-only                 # one PatchMatch search step at 512²

``--search-only`` times one PatchMatch search step (the finest level's inner loop) on smooth
random features with a coherent coarse match, as both trees' ``PatchMatch.search`` see it.
Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

#: one PatchMatch search step, run inside a tree (its own package on sys.path first); prints JSON
SEARCH_SNIPPET = r"""
import inspect, json, sys, time, resource, torch, torch.nn.functional as F
sys.path.insert(0, ".")
from pipeline_cocosnet.models.layers import normalize_channels
from pipeline_cocosnet.models.patchmatch import PatchMatch, initial_offsets
size, channels, repeats = {size}, {channels}, {repeats}
torch.manual_seed(0)
def feature(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, size // 16, size // 16, generator=g)
    x = F.interpolate(x, size=(size, size), mode="bilinear") + 0.3 * torch.randn(1, channels, size, size, generator=g)
    return normalize_channels(x, center=True).contiguous(memory_format=torch.channels_last)
theta, phi = feature(1), feature(2)
coarse_size = size // 2
g = torch.Generator().manual_seed(3)
shift = F.interpolate(torch.randn(1, 2, 8, 8, generator=g) * coarse_size / 8, size=(coarse_size,) * 2, mode="bilinear")[0]
rows = (torch.arange(coarse_size).view(-1, 1) + shift[0]).round().clamp(0, coarse_size - 1).long()
cols = (torch.arange(coarse_size).view(1, -1) + shift[1]).round().clamp(0, coarse_size - 1).long()
offsets = initial_offsets((rows * coarse_size + cols).unsqueeze(0), (size, size), 4)
offsets = offsets + torch.rand(offsets.shape, generator=g) - 0.5  # fractional, as after a GRU update
module = PatchMatch(channels).eval()
# a level's steps share the buffers of the fused step, where the tree has them (as PatchMatch.forward)
shared = {{"workspace": {{}}}} if "workspace" in inspect.signature(module.search).parameters else {{}}
times = []
with torch.inference_mode():
    for i in range(repeats + 1):  # the first call warms up (and compiles, where something compiles)
        start = time.perf_counter()
        module.search(theta, phi, offsets, True, **shared)
        times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"stages": {{"search step": {{"median": sorted(times[1:])[len(times[1:]) // 2]}}}}, "peak_mib": peak}}))
"""


def host() -> str:
    """The CPU model name and the flags that decide the kernels (avx2 / avx512f / avx512_bf16 / amx_tile)."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), model)
        flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model}; flags: {' '.join(shown) or 'none of avx2/avx512f/avx512_bf16/amx_tile'}; {os.cpu_count()} CPUs"


def native_bf16() -> bool:
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def worktree(base: str) -> tuple[Path, str]:
    """A worktree of ``base`` in a temporary folder, and the commit it resolved to."""
    commit = subprocess.run(["git", "rev-parse", "--short", base], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix=f"ab-{commit}-"))
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(folder), commit], cwd=ROOT, check=True)
    return folder, commit


def measure(tree: Path, case: dict) -> dict:
    """One measurement in a fresh interpreter inside ``tree``: a whole forward, or one search step."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if case.get("search"):
        code = SEARCH_SNIPPET.format(size=case["size"], channels=32, repeats=case["repeats"])
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, str(tree / "benchmarks" / "bench_inference.py"), "--worker", json.dumps(case)]
    proc = subprocess.run(command, cwd=tree, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(a: list[dict], b: list[dict]) -> list[tuple[str, float, float, float]]:
    """Per stage: (name, median seconds of A, of B, B / A)."""
    rows = []
    for stage in a[0]["stages"]:
        ma = statistics.median(r["stages"][stage]["median"] for r in a)
        mb = statistics.median(r["stages"][stage]["median"] for r in b)
        rows.append((stage, ma, mb, mb / ma))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare against (B); A is the working tree")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--dtypes", nargs="+", default=None, help="default: float32, and bfloat16 where the CPU has native bf16")
    parser.add_argument("--rounds", type=int, default=3, help="A/B pairs per case (each a fresh process)")
    parser.add_argument("--search-only", action="store_true", help="time one PatchMatch search step instead of whole forwards")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    dtypes = args.dtypes or (["float32", "bfloat16"] if native_bf16() else ["float32"])
    tree, commit = worktree(args.base)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = " + uncommitted changes" if subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip() else ""
    lines = [
        f"# A/B: working tree ({head}{dirty}) against {commit}",
        "",
        f"Host: {host()}; torch {torch.__version__}, {torch.get_num_threads()} threads. "
        f"Alternating A/B, {args.rounds} rounds, each measurement a fresh process; medians.",
        "",
        "| size | dtype | stage | A s (this tree) | B s (" + commit + ") | speed-up B/A |",
        "|---|---|---|---|---|---|",
    ]
    try:
        for size in args.sizes:
            for dtype in ["float32"] if args.search_only else dtypes:
                case = {"impl": "fast", "device": "cpu", "dtype": dtype, "size": size, "batch": 1, "warmup": 1, "repeats": 1}
                if args.search_only:
                    case = {"search": True, "size": size, "repeats": 5}
                a, b = [], []
                for _ in range(args.rounds):
                    a.append(measure(ROOT, case))
                    b.append(measure(tree, case))
                for stage, ma, mb, ratio in compare(a, b):
                    lines.append(f"| {size} | {dtype} | {stage} | {ma:.3f} | {mb:.3f} | {ratio:.2f}× |")
                pa, pb = (statistics.median(r["peak_mib"] for r in side) for side in (a, b))
                lines.append(f"| {size} | {dtype} | peak RSS MiB | {pa:.0f} | {pb:.0f} | {pb / pa:.2f}× |")
                print("\n".join(lines[-len(a[0]["stages"]) - 1:]), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
