"""CoCosNet v2: full-resolution correspondence learning for exemplar-based image translation."""

from .models import CoCosNetCorrespondence, CoCosNetTranslator, CorrespondenceOutput
from .demo_model import DEMO_MODEL, demo_model_path
from .pipeline import CoCosNetPipeline, PipelineInterrupted
from .pipeline_output import CoCosNetPipelineOutput, ExemplarSuggestion

__version__ = "0.1.0"

__all__ = [
    "CoCosNetCorrespondence",
    "CoCosNetTranslator",
    "CorrespondenceOutput",
    "CoCosNetPipeline",
    "PipelineInterrupted",
    "CoCosNetPipelineOutput",
    "ExemplarSuggestion",
    "DEMO_MODEL",
    "demo_model_path",
    "__version__",
]
