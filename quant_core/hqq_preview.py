"""Error of a tensor in HQQ's native format (the inspector's comparison scheme), like evaluate_tensor."""

from __future__ import annotations

import numpy as np

from .evaluate import CHUNK_ELEMENTS, _groups_by_matrix, _imatrix_for_row
from .hqq_native import GROUP, scheme_roundtrip
from .model import Model, TensorInfo
from .stats import ErrorStats, StatsAccumulator


def scheme_problem(t: TensorInfo) -> str | None:
    """Why HQQ's native format cannot hold this tensor's rows, or None."""
    if t.n_per_row % GROUP:
        return f"row length {t.n_per_row} is not a multiple of HQQ's group of {GROUP}"
    return None


def evaluate_scheme(
    model: Model, t: TensorInfo, name: str, rows: np.ndarray, imatrix_values: np.ndarray | None = None
) -> ErrorStats:
    """Error statistics of the given rows of ``t`` through the HQQ scheme ``name`` and back.

    Chunked as :func:`quant_core.evaluate.evaluate_tensor` is, with the same importance weighting
    of the statistics (HQQ itself does not use an importance matrix).
    """
    groups = _groups_by_matrix(t, rows, imatrix_values is not None)
    first = _imatrix_for_row(imatrix_values, t, int(rows[0])) if len(rows) else None
    acc = StatsAccumulator(first if len(groups) == 1 else None)
    chunk = max(1, CHUNK_ELEMENTS // t.n_per_row)
    for group in groups:
        for start in range(0, len(group), chunk):
            x = model.rows_f32(t.name, group[start : start + chunk])
            acc.add(x, scheme_roundtrip(x, name))
    return acc.result()
