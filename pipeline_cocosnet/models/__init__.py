"""CoCosNet v2 networks: correspondence (domain alignment + hierarchical PatchMatch) and translator."""

from .correspondence import CoCosNetCorrespondence, CorrespondenceOutput, DomainAlignmentEncoder
from .translator import CoCosNetTranslator

__all__ = ["CoCosNetCorrespondence", "CorrespondenceOutput", "CoCosNetTranslator", "DomainAlignmentEncoder"]
