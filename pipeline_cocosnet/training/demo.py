"""Package a pipeline trained on procedural scenes as the embedded demo model.

    python -m pipeline_cocosnet.training.demo runs/demo-scenes/pipeline \\
        --config configs/train_demo_scenes.yaml --quality quality.md

writes ``pipeline_cocosnet/weights/demo-scenes/`` (what ``CoCosNetPipeline.from_pretrained("demo")``
loads): the components in fp16 safetensors, ``model_index.json`` with ``origin`` starting
"demo weights trained on procedural scenes", the training config and a model card.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from ..demo_model import DEMO_ORIGIN_PREFIX, demo_model_path
from ..model_card import card_from_parts, model_card_data
from ..pipeline import CoCosNetPipeline

__all__ = ["package_demo", "MODEL_CARD"]

#: the card's body (its metadata comes from ``model_card.model_card_data``, tagged ``demo``)
MODEL_CARD = """# CoCosNet v2 demo model — {task}, {demo_prefix}

**These are demo weights trained on procedural scenes, not on ADE20k.** They let
`pipeline_cocosnet` and its app do their main job out of the box, offline, with nothing
downloaded: an ADE20k-style index mask (0 unknown, 1..150) plus an exemplar photo and its
mask → an image with the mask's layout and the exemplar's colours.

```python
from pipeline_cocosnet import CoCosNetPipeline

pipe = CoCosNetPipeline.from_pretrained("demo")      # float32, CPU; pipe.is_demo is True
image = pipe(mask, exemplar, exemplar_mask).images[0]
```

| | |
|---|---|
| task | {task} (ADE20k class ids, 151 label channels) |
| resolution | {height}×{width} |
| networks | nef {nef}, ngf {ngf}, SPADE hidden {spade_hidden}, {iterations} PatchMatch iterations, learning ConvGRU: {learn_gru} |
| parameters | {params:.2f} M, stored in fp16 ({megabytes:.1f} MB) |
| training data | procedural landscapes of `pipeline_cocosnet.training.data.scenes` (sky, mountain, sea, water, grass, tree, sand, rock, building, road, earth), each class painted with a procedural texture in colours of a per-scene palette |
| training | `cocosnet train --config train_demo_scenes.yaml` (this folder): {origin} |
| licence | MIT (weights made by this project's code from generated data only) |

## What it is good for

Trying the pipeline and the app, tests, and measuring the correspondence
(`benchmarks/correspondence_quality.py`): it matches the exemplar to the mask class by class
and warps its textures onto the new layout.

## What it is not

* Not an ADE20k model: it has never seen a photograph. It knows the 11 classes above, in
  flat, cartoon-like textures; other ADE20k classes in a mask (people, cars, furniture, indoor
  scenes…) are unknown to it and come out as smears of whatever the exemplar offers.
* Not a quality model: small networks, a short CPU run, {height}×{width}. Real photos as
  exemplars work only as far as their colours go.
* Not for any claim about CoCosNet v2's published quality.

## Correspondence quality

{quality}
"""


def package_demo(
    pipeline_folder: str | Path,
    config_path: str | Path,
    output: str | Path | None = None,
    quality: str = "",
    resolution: tuple[int, int] | None = None,
    note: str = "",
) -> Path:
    """Write the demo folder from a trained pipeline; returns it."""
    output = Path(output) if output is not None else demo_model_path()
    pipe = CoCosNetPipeline.from_pretrained(str(pipeline_folder), dtype=torch.float32)
    origin = str(pipe.config.origin or "") + (f"; {note}" if note else "")
    pipe.register_to_config(origin=f"{DEMO_ORIGIN_PREFIX} (NOT ADE20k): {origin}", license="mit")
    if resolution is not None:
        pipe.register_to_config(resolution=list(resolution))
    pipe.to(torch.float16)
    if output.exists():
        shutil.rmtree(output)
    pipe.save_pretrained(output)
    shutil.copy(config_path, output / Path(config_path).name)
    params = sum(p.numel() for p in pipe.correspondence.parameters()) + sum(p.numel() for p in pipe.translator.parameters())
    size = sum(p.stat().st_size for p in output.rglob("*.safetensors"))
    corr, translator = pipe.correspondence.config, pipe.translator.config
    body = MODEL_CARD.format(
        task=pipe.config.task,
        demo_prefix=DEMO_ORIGIN_PREFIX,
        height=pipe.config.resolution[0],
        width=pipe.config.resolution[1],
        nef=corr.nef,
        ngf=translator.ngf,
        spade_hidden=corr.spade_hidden,
        iterations=corr.iterations,
        learn_gru="yes" if corr.learn_gru else "no",
        params=params / 1e6,
        megabytes=size / 2**20,
        origin=origin,
        quality=quality or "Run `python benchmarks/correspondence_quality.py`.",
    )
    card_from_parts(model_card_data(pipe, extra_tags=("demo",)), body).save(output / "README.md")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Package a trained pipeline as the embedded demo model.")
    parser.add_argument("pipeline", help="the trained pipeline folder")
    parser.add_argument("--config", required=True, help="the training config (copied into the folder)")
    parser.add_argument("--output", default=None, help="default: the package's weights/demo-scenes")
    parser.add_argument("--quality", default=None, help="a Markdown file with the quality table for the model card")
    parser.add_argument("--note", default="", help="appended to the recorded origin (e.g. earlier training phases)")
    parser.add_argument("--resolution", type=int, nargs=2, default=None, help="H W the pipeline runs at by default")
    args = parser.parse_args(argv)
    quality = Path(args.quality).read_text() if args.quality else ""
    print(package_demo(args.pipeline, args.config, args.output, quality, tuple(args.resolution) if args.resolution else None, args.note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
