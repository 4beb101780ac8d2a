"""Weight-space error of a tensor at a type: relative error energy on sampled rows.

``e = sum_rows sum_j w_j (dequant(quant(x))_j - x_j)^2 / sum_rows sum_j w_j x_j^2`` with ``w`` the
importance values of the tensor (all ones without an importance matrix), computed with the real
quantizer (byte-identical to ggml's) and the importance values llama-quantize would pass it.
A type equal to a quantized source type costs nothing: export copies those bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..evaluate import sample_rows
from ..imatrix import Imatrix, tensor_importance
from ..model import Model, TensorInfo
from ..quantize import dequantize, quantize

MIN_ROWS = 8


def sampled_row_indices(t: TensorInfo, sample_elements: int) -> np.ndarray:
    """Evenly spaced rows holding about ``sample_elements`` weights (at least a few rows)."""
    want = max(MIN_ROWS, sample_elements // max(1, t.n_per_row))
    return sample_rows(t.n_rows, want)


def _matrix_groups(t: TensorInfo, rows: np.ndarray) -> list[np.ndarray]:
    """The sampled rows split by stacked matrix (expert), which each have their own importance."""
    per_matrix = t.shape[1] if len(t.shape) > 1 else 1
    matrix = rows // per_matrix
    return [rows[matrix == m] for m in np.unique(matrix)]


def tensor_errors(
    model: Model,
    t: TensorInfo,
    types: Sequence[str],
    imatrix: Imatrix | None,
    sample_elements: int,
    threads: int | None = None,
) -> dict[str, float]:
    """Relative (importance-weighted) error energy of ``t`` at each of ``types``."""
    values = tensor_importance(imatrix, t)
    rows = sampled_row_indices(t, sample_elements)
    num = dict.fromkeys(types, 0.0)
    den = 0.0
    per_matrix = t.shape[1] if len(t.shape) > 1 else 1
    for group in _matrix_groups(t, rows):
        m = int(group[0]) // per_matrix
        w = None if values is None else np.ascontiguousarray(values[m * t.n_per_row : (m + 1) * t.n_per_row])
        x = model.rows_f32(t.name, group)
        weight = np.ones(t.n_per_row, np.float64) if w is None else w.astype(np.float64)
        den += float((x.astype(np.float64) ** 2 @ weight).sum())
        for name in types:
            if name == t.src_type:
                continue
            y = dequantize(quantize(x, name, imatrix=w, threads=threads), name, t.n_per_row, threads=threads)
            num[name] += float((((y - x).astype(np.float64)) ** 2 @ weight).sum())
    if den <= 0.0:
        return dict.fromkeys(types, 0.0)
    return {name: num[name] / den for name in types}
