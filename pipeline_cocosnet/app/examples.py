"""The demo's example inputs: ``EXAMPLES_DIR/<task>/examples.json`` per tab.

Manifest format (paths relative to the manifest's folder)::

    {
      "examples": [{"structure": "...", "exemplar": "...", "exemplar_structure": "...", "label": "..."}],
      "gallery":  [{"exemplar": "...", "exemplar_structure": "...", "label": "..."}]
    }

``examples`` are the clickable rows (``exemplar_structure`` optional); ``gallery`` the
exemplars offered for picking and for "Suggest exemplar". Without a manifest, a folder of
``NAME.png``/``NAME.jpg`` photos with ``NAME_mask.png`` masks (mask-to-image) makes both:
each mask with the next scene's photo and mask as exemplar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TabExamples", "load_examples", "default_examples_dir"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_MASK_SUFFIXES = ("_mask", "_label", "_seg")


@dataclass
class TabExamples:
    """One tab's example rows and exemplar gallery (absolute paths as strings; missing files dropped)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    gallery: list[dict[str, Any]] = field(default_factory=list)


def default_examples_dir() -> Path | None:
    """``examples/`` of the source checkout this package runs from, if there is one."""
    folder = Path(__file__).resolve().parents[2] / "examples"
    return folder if folder.is_dir() else None


def _resolve(folder: Path, entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    resolved = {}
    for key in keys:
        value = entry.get(key)
        if value is None:
            resolved[key] = None
            continue
        path = (folder / value).resolve()
        if not path.is_file():
            return None
        resolved[key] = str(path)
    resolved["label"] = entry.get("label")
    return resolved


def _scan_mask_pairs(folder: Path) -> list[dict[str, Any]]:
    """``NAME.(png|jpg)`` + ``NAME_mask.png`` pairs, sorted by name."""
    pairs = []
    for mask in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.stem.endswith(_MASK_SUFFIXES)):
        stem = mask.stem.rsplit("_", 1)[0]
        photos = [folder / f"{stem}{s}" for s in _IMAGE_SUFFIXES] + [folder / f"{stem}_image{s}" for s in _IMAGE_SUFFIXES]
        photo = next((p for p in photos if p.is_file()), None)
        if photo is not None:
            pairs.append({"exemplar": str(photo), "exemplar_structure": str(mask), "label": stem})
    return pairs


def load_examples(examples_dir: str | Path | None, task: str) -> TabExamples:
    """The examples of ``task`` under ``examples_dir`` (empty when there are none)."""
    if examples_dir is None:
        return TabExamples()
    folder = Path(examples_dir) / task
    if not folder.is_dir():
        return TabExamples()
    manifest = folder / "examples.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"invalid examples manifest {manifest}: {error}") from None
        rows = [_resolve(folder, e, ("structure", "exemplar", "exemplar_structure")) for e in data.get("examples", [])]
        gallery = [_resolve(folder, e, ("exemplar", "exemplar_structure")) for e in data.get("gallery", [])]
        return TabExamples([r for r in rows if r], [g for g in gallery if g])
    pairs = _scan_mask_pairs(folder)
    rows = [
        {"structure": a["exemplar_structure"], "exemplar": b["exemplar"], "exemplar_structure": b["exemplar_structure"], "label": f"{a['label']} ← {b['label']}"}
        for a, b in zip(pairs, pairs[1:] + pairs[:1])
        if len(pairs) > 1
    ]
    return TabExamples(rows, pairs)
