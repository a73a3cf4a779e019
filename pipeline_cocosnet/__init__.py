"""CoCosNet v2: full-resolution correspondence learning for exemplar-based image translation.

The public names load on first use (as diffusers' own ``__init__`` does), so ``import
pipeline_cocosnet`` and ``cocosnet --help`` do not import torch or diffusers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → the module that defines it
_EXPORTS = {
    "CoCosNetCorrespondence": ".models",
    "CoCosNetTranslator": ".models",
    "CorrespondenceOutput": ".models",
    "CoCosNetPipeline": ".pipeline",
    "PipelineInterrupted": ".pipeline",
    "CoCosNetPipelineOutput": ".pipeline_output",
    "ExemplarSuggestion": ".pipeline_output",
    "DEMO_MODEL": ".demo_model",
    "demo_model_path": ".demo_model",
    "load_pipeline": ".weights",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .demo_model import DEMO_MODEL, demo_model_path
    from .models import CoCosNetCorrespondence, CoCosNetTranslator, CorrespondenceOutput
    from .pipeline import CoCosNetPipeline, PipelineInterrupted
    from .pipeline_output import CoCosNetPipelineOutput, ExemplarSuggestion
    from .weights import load_pipeline


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
