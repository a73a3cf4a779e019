"""The embedded demo model: its name, where it lies, and how its origin reads (docs/demo_model.md).

Kept free of heavy imports, so the app can name the demo weights before loading anything.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEMO_MODEL", "DEMO_ORIGIN_PREFIX", "demo_model_path"]

#: the documented name of the embedded demo model (``CoCosNetPipeline.from_pretrained(DEMO_MODEL)``)
DEMO_MODEL = "demo"
#: how the demo model's ``config.origin`` starts (the app shows it as a note)
DEMO_ORIGIN_PREFIX = "demo weights trained on procedural scenes"


def demo_model_path() -> Path:
    """The folder of the embedded demo pipeline (mask-to-image, 128×128, trained on procedural
    landscape scenes in ADE20k class ids by this package's training code, NOT on ADE20k)."""
    return Path(__file__).resolve().parent / "weights" / "demo-scenes"
