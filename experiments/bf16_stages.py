"""Where does bf16 lose quality? Per-stage distance to float64 of the demo model on the precision test's scenes.

    python experiments/bf16_stages.py                       # main's precision policy and the variants
    python experiments/bf16_stages.py --variants bf16 enc32

An experiment script, not part of the package (results: docs/cpu-speed.md, "Quality"). The three
scenes are those of ``tests/test_precision.py`` (structure seeds 5006, 5100, 5200, the exemplar is
the next seed). The inputs are built once by ``pipe(...)``'s own preprocessing (captured from a
float64 run) and every variant runs the stages as ``pipe(...)`` does (channels-last, fixed
PatchMatch order). For each variant and scene it prints mean |x − x_float64| of

* the encoders' unit-norm features per level (structure side f, exemplar side g), and θ/φ;
* the warps per level (values in [-1, 1]);
* the translator's image given the float64 warps ("translator alone", [0, 1]);
* the image (the test's measure: [0, 1] image), and its ratio to float32's.

A *variant* is a dtype for the components plus modules kept in float32 (their inputs cast to
float32 by a forward pre-hook; a bf16 module after them gets its input cast back).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_cocosnet import DEMO_MODEL, CoCosNetPipeline  # noqa: E402
from pipeline_cocosnet.training.data.scenes import make_scene  # noqa: E402

SEEDS = (5006, 5100, 5200)

#: variant name → (components' dtype, module names (prefix match) kept in float32)
VARIANTS: dict[str, tuple[torch.dtype, tuple[str, ...]]] = {
    "float32": (torch.float32, ()),
    "float32r": ("float32, inputs rounded to bf16", ()),
    "bf16": (torch.bfloat16, ()),
    "enc32": (torch.bfloat16, ("correspondence.structure_aligner", "correspondence.exemplar_aligner")),
    "corr32": (torch.bfloat16, ("correspondence",)),
    "trans32": (torch.bfloat16, ("translator",)),
    "gru32": (torch.bfloat16, ("correspondence.patchmatch",)),
    "dec32": (torch.bfloat16, ("correspondence.structure_aligner.decoder", "correspondence.exemplar_aligner.decoder")),
    "stages32": (torch.bfloat16, ("correspondence.structure_aligner.stages", "correspondence.structure_aligner.conv_in",
                                  "correspondence.exemplar_aligner.stages", "correspondence.exemplar_aligner.conv_in")),
    "dec01_32": (torch.bfloat16, tuple(f"correspondence.{side}_encoder.decoder.{i}" for side in ("structure", "exemplar") for i in (0, 1))),
    "coarse32": (torch.bfloat16, tuple(f"correspondence.{side}_encoder.{part}" for side in ("structure", "exemplar")
                                       for part in ("conv_in", "stages", "decoder.0", "decoder.1"))),
    "tp32": (torch.bfloat16, ("correspondence.theta", "correspondence.phi")),
    "pm32": (torch.bfloat16, ("correspondence.patchmatch",)),
    "enc_tp32": (torch.bfloat16, ("correspondence.structure_aligner", "correspondence.exemplar_aligner",
                                  "correspondence.theta", "correspondence.phi")),
    "dec_tp32": (torch.bfloat16, ("correspondence.structure_aligner.decoder", "correspondence.exemplar_aligner.decoder",
                                  "correspondence.theta", "correspondence.phi")),
    "lastdec32": (torch.bfloat16, ("correspondence.structure_aligner.decoder.3", "correspondence.exemplar_aligner.decoder.3")),
    "last2dec32": (torch.bfloat16, ("correspondence.structure_aligner.decoder.2", "correspondence.exemplar_aligner.decoder.2",
                                    "correspondence.structure_aligner.decoder.3", "correspondence.exemplar_aligner.decoder.3")),
}


def scenes(seeds: tuple[int, ...] = SEEDS) -> tuple[list, list, list]:
    """Structures of ``seeds``, each with the next seed's scene as exemplar (image and mask), at 128²."""
    pairs = [(make_scene(seed, (128, 128))[0], *make_scene(seed + 1, (128, 128))[::-1]) for seed in seeds]
    masks, exemplars, exemplar_masks = (list(x) for x in zip(*pairs))
    return masks, exemplars, exemplar_masks


def captured_inputs(pipe: CoCosNetPipeline, masks, exemplars, exemplar_masks) -> tuple[torch.Tensor, ...]:
    """(label, exemplar, exemplar_label) as ``pipe(...)`` hands them to ``correspondence.encode``."""
    seen = {}
    encode = pipe.correspondence.encode

    def spy(label, exemplar, exemplar_label):
        seen["inputs"] = (label, exemplar, exemplar_label)
        return encode(label, exemplar, exemplar_label)

    pipe.correspondence.encode = spy
    try:
        pipe(masks, exemplars, exemplar_masks, output_type="np")
    finally:
        del pipe.correspondence.encode
    return seen["inputs"]


def keep_in_float32(pipe: CoCosNetPipeline, prefixes: tuple[str, ...]) -> None:
    """Cast every module but the named ones (and their children) to bf16; each module with parameters casts
    its floating inputs to its own dtype. ``pipe`` is float32: the kept modules' weights stay exact."""
    for component in ("correspondence", "translator"):
        model: nn.Module = getattr(pipe, component)
        for name, module in model.named_modules():
            full = f"{component}.{name}" if name else component
            if not any(full == p or full.startswith(p + ".") for p in prefixes):
                for param in module.parameters(recurse=False):
                    param.data = param.data.to(torch.bfloat16)
        for name, module in model.named_modules():
            params = list(module.parameters(recurse=False))
            if not params:
                continue
            dtype = params[0].dtype

            def cast(m, args, kwargs, dtype=dtype):
                args = tuple(a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
                return args, kwargs

            module.register_forward_pre_hook(cast, with_kwargs=True)


def load(dtype: torch.dtype, float32_modules: tuple[str, ...] = ()) -> CoCosNetPipeline:
    """The demo pipeline in ``dtype``, or (with ``float32_modules``) float32 ones in a bf16 pipeline."""
    pipe = CoCosNetPipeline.from_pretrained(DEMO_MODEL, dtype=torch.float32 if float32_modules else dtype)
    pipe.set_progress_bar_config(disable=True)
    if float32_modules:
        keep_in_float32(pipe, float32_modules)
    return pipe


@torch.no_grad()
def stages(
    pipe: CoCosNetPipeline, dtype: torch.dtype, inputs: tuple[torch.Tensor, ...], exact_warps: list[torch.Tensor] | None
) -> dict:
    """Each stage's output of ``pipe`` whose components are ``dtype`` (some modules may be float32)."""
    corr, trans = pipe.correspondence, pipe.translator
    if dtype == "float32, inputs rounded to bf16":
        inputs = tuple(x.to(torch.bfloat16) for x in inputs)
        dtype = torch.float32
    label, exemplar, exemplar_label = (x.float().to(dtype) if dtype != torch.float64 else x for x in inputs)
    if dtype != torch.float64:
        for model in (corr, trans):
            model.to(memory_format=torch.channels_last)
    features = corr.encode(label, exemplar, exemplar_label)
    warps, indices = corr.match(features, exemplar, None)
    image = trans(label, warps)
    given = trans(label, [w.to(dtype) for w in exact_warps]) if exact_warps is not None else image
    unit = lambda x: (x.double() / 2 + 0.5).clamp(0, 1)  # noqa: E731  (as the image processor)
    return {
        "f": [f.double() for f in features.structure],
        "g": [g.double() for g in features.exemplar],
        "theta": [t.double() for t in features.theta],
        "phi": [p.double() for p in features.phi],
        "warps": [w.double() for w in warps],
        "indices": [i[:, :1] for i in indices],  # the first candidate per pixel
        "translator": unit(given),
        "image": unit(image),
    }


def per_scene(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return (a - b).abs().mean(dim=(1, 2, 3)).tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["float32", "bf16", "enc32", "corr32", "trans32"], choices=sorted(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="structure seeds (default: the test's)")
    parser.add_argument("--brief", action="store_true", help="only the images' distances and ratios")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    masks, exemplars, exemplar_masks = scenes(tuple(args.seeds))
    exact_pipe = load(torch.float64)
    inputs = captured_inputs(exact_pipe, masks, exemplars, exemplar_masks)
    exact = stages(exact_pipe, torch.float64, inputs, None)
    # the test's own measure, through pipe(...), as a check that the stages reproduce it
    pipe_images = {}
    results = {}
    for name in ["float32", *[v for v in args.variants if v != "float32"]]:
        dtype, modules = VARIANTS[name]
        pipe = load(dtype if isinstance(dtype, torch.dtype) else torch.float32, modules)
        result = stages(pipe, dtype, inputs, exact["warps"])
        if not modules and isinstance(dtype, torch.dtype):
            pipe_images[name] = torch.from_numpy(pipe(masks, exemplars, exemplar_masks, output_type="np").images).double()
        results[name] = result
    base = per_scene(results["float32"]["image"], exact["image"])
    if "bf16" in pipe_images:
        exact_np = torch.from_numpy(exact_pipe(masks, exemplars, exemplar_masks, output_type="np").images).double()
        e32 = (pipe_images["float32"] - exact_np).abs().mean(dim=(1, 2, 3))
        e16 = (pipe_images["bf16"] - exact_np).abs().mean(dim=(1, 2, 3))
        print("pipe(...) (the test's measure): float32", [f"{v:.5f}" for v in e32.tolist()],
              "bf16", [f"{v:.5f}" for v in e16.tolist()], "ratio", [f"{v:.2f}" for v in (e16 / e32).tolist()])
    fmt = lambda xs: " ".join(f"{x:.2e}" for x in xs)  # noqa: E731
    for name, result in results.items():
        print(f"\n== {name}: {VARIANTS[name][0]}, float32 modules {VARIANTS[name][1] or '—'}")
        for key in () if args.brief else ("f", "g", "theta", "phi", "warps"):
            for level, (x, y) in enumerate(zip(result[key], exact[key])):
                print(f"  {key:6s} level {level} ({x.shape[-1]}²): {fmt(per_scene(x, y))}")
        flips = [(i != j).double().mean(dim=(1, 2, 3)).tolist() for i, j in zip(result["indices"], exact["indices"])]
        print("  first-candidate index ≠ float64's, per level:", " | ".join(" ".join(f"{x:.1%}" for x in f) for f in flips))
        print(f"  translator alone (float64 warps): {fmt(per_scene(result['translator'], exact['translator']))}")
        image = per_scene(result["image"], exact["image"])
        ratios = torch.tensor(image) / torch.tensor(base)
        print(f"  image: {fmt(image)}   ratio to float32: {' '.join(f'{r:.2f}' for r in ratios.tolist())}")
        print(f"  ratio of the mean distances {sum(image) / sum(base):.2f}, median ratio {ratios.median():.2f}, max {ratios.max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
