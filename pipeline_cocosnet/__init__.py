"""CoCosNet v2: full-resolution correspondence learning for exemplar-based image translation."""

from .models import CoCosNetCorrespondence, CoCosNetTranslator, CorrespondenceOutput
from .pipeline import DEMO_MODEL, CoCosNetPipeline, CoCosNetPipelineOutput, ExemplarSuggestion, demo_model_path

__version__ = "0.1.0"

__all__ = [
    "CoCosNetCorrespondence",
    "CoCosNetTranslator",
    "CorrespondenceOutput",
    "CoCosNetPipeline",
    "CoCosNetPipelineOutput",
    "ExemplarSuggestion",
    "DEMO_MODEL",
    "demo_model_path",
    "__version__",
]
