"""Whether a model's float weights were dequantized from a quantized file.

A float model made by dequantizing a 4-bit (or smaller) file keeps the few levels of each
quantization block: a 32-weight block holds at most 16 distinct values, where trained F16 or
BF16 weights hold ~32. Error figures measured against such a source compare one quantization
with another, so the window flags it. Types of 5 bits and more leave 32 levels per block and
are not detected.
"""

from __future__ import annotations

import numpy as np

from .model import Model, TensorInfo

BLOCK = 32
DEQUANTIZED_MAX_DISTINCT = 16  # a 4-bit grid has 16 levels per block; trained weights ~32
FLOAT_TYPES = ("F32", "F16", "BF16")
WARNING = "weights look dequantized from a quantized file: error figures mean little"


def distinct_per_block(rows: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """The number of distinct values in each ``block``-wide block of ``rows`` (rows, n)."""
    n = rows.shape[-1] - rows.shape[-1] % block
    blocks = np.sort(rows[..., :n].reshape(-1, block), axis=1)
    return 1 + np.count_nonzero(np.diff(blocks, axis=1), axis=1)


def _sampled(model: Model, n_tensors: int) -> list[TensorInfo]:
    """The largest float matrices (up to ``n_tensors``): the ones a quantized file quantized."""
    matrices = [t for t in model.tensors if t.src_type in FLOAT_TYPES and len(t.shape) >= 2 and t.shape[0] >= BLOCK]
    return sorted(matrices, key=lambda t: (-t.n_elements, t.name))[:n_tensors]


def median_distinct(model: Model, n_tensors: int = 4, n_rows: int = 8) -> float | None:
    """Median distinct values per 32-weight block over a few rows of a few float matrices.

    None when the model has no float matrix to sample (a quantized source). Reads only the
    sampled rows.
    """
    counts = []
    for t in _sampled(model, n_tensors):
        rows = np.unique(np.linspace(0, t.n_rows - 1, min(n_rows, t.n_rows)).astype(np.int64))
        counts.append(distinct_per_block(model.rows_f32(t.name, rows)))
    if not counts:
        return None
    return float(np.median(np.concatenate(counts)))


def looks_dequantized(model: Model) -> bool:
    """True when the float weights keep a quantization grid of at most 16 levels per block."""
    median = median_distinct(model)
    return median is not None and median <= DEQUANTIZED_MAX_DISTINCT
