"""Importance matrices computed from a text through llama.cpp, as ``llama-imatrix`` computes them,
and the per-tensor statistics ``llama-imatrix --show-statistics`` prints."""

from .compute import ImatrixProgress, ImatrixResult, count_chunks, iter_imatrix, output_format

__all__ = ["ImatrixProgress", "ImatrixResult", "count_chunks", "iter_imatrix", "output_format"]
