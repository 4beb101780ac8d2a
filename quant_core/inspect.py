"""What the tensor inspector shows: error histograms for a type (and a second one to compare),
the weight histogram, and the quantization levels of one block. Sampled first, then full."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .evaluate import DEFAULT_SAMPLE_ROWS, evaluate_tensor, sample_rows
from .hqq_native import is_scheme
from .hqq_preview import evaluate_scheme
from .model import Model, TensorInfo
from .qtypes import qtype
from .quantize import dequantize, quantize
from .stats import ErrorStats, weight_histogram

HIST_BINS = 128


@dataclass(frozen=True)
class Inspection:
    """One tensor under the inspector. ``full`` is False for the quick row-sampled answer."""

    name: str
    type: str
    stats: ErrorStats
    compare_type: str | None
    compare_stats: ErrorStats | None
    weight_counts: np.ndarray
    weight_edges: np.ndarray
    levels: np.ndarray
    rows_used: int
    n_rows: int
    encoder: str = "ggml"

    @property
    def full(self) -> bool:
        return self.rows_used >= self.n_rows


def block_levels(
    model: Model,
    t: TensorInfo,
    type_name: str,
    rows: np.ndarray,
    imatrix_values: np.ndarray | None = None,
    encoder: str = "ggml",
) -> np.ndarray:
    """Distinct dequantized values of the scale group holding the largest sampled weight."""
    x = model.rows_f32(t.name, rows[: min(len(rows), 16)])
    r, c = np.unravel_index(int(np.argmax(np.abs(x))), x.shape)
    qt = qtype(type_name)
    group = qt.scale_group
    start = (c // group) * group
    if type_name == t.src_type or qt.is_float:
        return np.unique(x[r, start : start + group])
    qw = None if imatrix_values is None else imatrix_values[: t.n_per_row]
    y = dequantize(quantize(x[r : r + 1], type_name, imatrix=qw, encoder=encoder), type_name, t.n_per_row)[0]
    return np.unique(y[start : start + group])


def iter_inspect(
    model: Model,
    t: TensorInfo,
    type_name: str,
    compare_type: str | None = None,
    imatrix_values: np.ndarray | None = None,
    sample: int = DEFAULT_SAMPLE_ROWS,
    threads: int | None = None,
    encoder: str = "ggml",
) -> Iterator[Inspection]:
    """Yield the row-sampled inspection at once, then (for bigger tensors) the full one.

    ``compare_type`` is a second GGUF type or one of HQQ's native schemes
    (:data:`quant_core.hqq_native.SCHEMES`). ``encoder`` writes the planned type; a compared
    GGUF type uses ggml's (so the planned type itself compares when the planned encoder is HQQ).

    The weight histogram and the block levels come from the sampled rows in both passes.
    """
    passes = [sample_rows(t.n_rows, sample)]
    if len(passes[0]) < t.n_rows:
        passes.append(np.arange(t.n_rows))
    levels = block_levels(model, t, type_name, passes[0], imatrix_values, encoder)
    counts, edges = weight_histogram(model.rows_f32(t.name, passes[0]), HIST_BINS)
    for rows in passes:
        stats = evaluate_tensor(model, t, type_name, rows, imatrix_values, threads, encoder)
        other = None
        if is_scheme(compare_type):  # HQQ's own format, not a GGUF type
            other = evaluate_scheme(model, t, str(compare_type).upper(), rows, imatrix_values)
        elif compare_type and (compare_type != type_name or encoder != "ggml"):
            other = evaluate_tensor(model, t, compare_type, rows, imatrix_values, threads)
        yield Inspection(
            t.name, type_name, stats, compare_type, other, counts, edges, levels, len(rows), t.n_rows, encoder
        )
