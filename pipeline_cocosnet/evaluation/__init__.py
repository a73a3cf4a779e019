"""Whole datasets: translate a PAIRS.csv (``translate_dataset``), score generated images (``metrics``)."""

from .pairs import BadRow, Pair, read_pairs, write_pairs
from .translate_dataset import DatasetRunSummary, output_path, translate_dataset

__all__ = ["BadRow", "Pair", "read_pairs", "write_pairs", "DatasetRunSummary", "output_path", "translate_dataset"]
