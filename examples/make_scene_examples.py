"""Regenerate ``examples/mask-to-image``: procedural landscape scenes for the mask-to-image tab.

Every file is made by :func:`pipeline_cocosnet.training.data.scenes.make_scene` (the demo
model's training generator) from the seeds below, which are outside its training ranges (seeds 0–4095 and 100003–104098):
``scene_SEED.png`` (the photo), ``scene_SEED_mask.png`` (its ADE20k index mask, 0 unknown,
1..150, stored as a palette PNG: the pixel values are the class ids, the palette the ADE20k colours, so
it reads as an index mask and looks like one in the app and any viewer) and ``examples.json`` (each scene's mask with the next scene as exemplar)::

    python examples/make_scene_examples.py
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from pipeline_cocosnet.processing.formats.ade20k import mask_to_indexed_palette
from pipeline_cocosnet.training.data.scenes import make_scene

SEEDS = (5006, 5012, 5019, 5021, 5010, 5001)
SIZE = (256, 256)
FOLDER = Path(__file__).resolve().parent / "mask-to-image"


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    gallery = []
    for seed in SEEDS:
        mask, image = make_scene(seed, SIZE)
        Image.fromarray(image).save(FOLDER / f"scene_{seed}.png", optimize=True)
        mask_to_indexed_palette(mask).save(FOLDER / f"scene_{seed}_mask.png", optimize=True)
        gallery.append({"exemplar": f"scene_{seed}.png", "exemplar_structure": f"scene_{seed}_mask.png", "label": f"scene {seed}"})
    examples = [
        {
            "structure": f"scene_{a}_mask.png",
            "exemplar": f"scene_{b}.png",
            "exemplar_structure": f"scene_{b}_mask.png",
            "label": f"layout of scene {a}, colours of scene {b}",
        }
        for a, b in zip(SEEDS, SEEDS[1:] + SEEDS[:1])
    ]
    (FOLDER / "examples.json").write_text(json.dumps({"examples": examples, "gallery": gallery}, indent=2) + "\n")


if __name__ == "__main__":
    main()
