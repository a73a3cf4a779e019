"""CoCosNet v2: full-resolution correspondence learning for exemplar-based image translation."""

from .models import CoCosNetCorrespondence, CoCosNetTranslator, CorrespondenceOutput
from .pipeline import CoCosNetPipeline, CoCosNetPipelineOutput

__version__ = "0.1.0"

__all__ = [
    "CoCosNetCorrespondence",
    "CoCosNetTranslator",
    "CorrespondenceOutput",
    "CoCosNetPipeline",
    "CoCosNetPipelineOutput",
    "__version__",
]
