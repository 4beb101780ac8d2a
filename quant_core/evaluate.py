"""Error of a plan, tensor by tensor: quantize, dequantize and compare, on sampled or all rows.

``iter_evaluate`` is a generator (one result per tensor) so the GUI can run it in a worker and
drop it when the plan changes; rows are processed in chunks, never the whole model at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .errors import QuantError
from .imatrix import Imatrix, tensor_importance
from .model import Model, TensorInfo
from .plan import Plan
from .quantize import dequantize, quantize
from .stats import ErrorStats, StatsAccumulator

CHUNK_ELEMENTS = 4 * 1024 * 1024
DEFAULT_SAMPLE_ROWS = 64


@dataclass(frozen=True)
class TensorEvaluation:
    """Error statistics of one tensor at one type, written by one encoder ("ggml" or "hqq")."""

    name: str
    type: str
    stats: ErrorStats
    rows_used: int
    n_rows: int
    encoder: str = "ggml"

    @property
    def sampled(self) -> bool:
        return self.rows_used < self.n_rows


def sample_rows(n_rows: int, max_rows: int | None) -> np.ndarray:
    """Evenly spaced row indices (all rows when ``max_rows`` is None, 0 or >= n_rows)."""
    if not max_rows or max_rows >= n_rows:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, max_rows).round().astype(np.int64))


def _imatrix_for_row(weights: np.ndarray | None, t: TensorInfo, row: int) -> np.ndarray | None:
    if weights is None:
        return None
    per_matrix = t.shape[1] if len(t.shape) > 1 else 1
    m = row // per_matrix
    return weights[m * t.n_per_row : (m + 1) * t.n_per_row]


def evaluate_tensor(
    model: Model,
    t: TensorInfo,
    type_name: str,
    rows: np.ndarray,
    imatrix_values: np.ndarray | None = None,
    threads: int | None = None,
    encoder: str = "ggml",
) -> ErrorStats:
    """Quantize the given rows of ``t`` to ``type_name`` (with ``encoder``) and return the error statistics.

    Rows are grouped so that every chunk shares one expert's importance vector.
    """
    groups = _groups_by_matrix(t, rows, imatrix_values is not None)
    first_weights = _imatrix_for_row(imatrix_values, t, int(rows[0])) if len(rows) else None
    acc = StatsAccumulator(first_weights if len(groups) == 1 else None)
    chunk = max(1, CHUNK_ELEMENTS // t.n_per_row)
    copy = type_name == t.src_type
    for group in groups:
        qw = _imatrix_for_row(imatrix_values, t, int(group[0]))
        for start in range(0, len(group), chunk):
            x = model.rows_f32(t.name, group[start : start + chunk])
            if copy:
                acc.add(x, x)
                continue
            q = quantize(x, type_name, imatrix=qw, threads=threads, encoder=encoder)
            acc.add(x, dequantize(q, type_name, t.n_per_row, threads=threads))
    return acc.result()


def _groups_by_matrix(t: TensorInfo, rows: np.ndarray, by_expert: bool) -> list[np.ndarray]:
    if not by_expert or len(t.shape) < 3:
        return [rows]
    per_matrix = t.shape[1]
    keys = rows // per_matrix
    return [rows[keys == k] for k in np.unique(keys)]


def iter_evaluate(
    model: Model,
    plan: Plan,
    names: Iterable[str] | None = None,
    max_rows: int | None = DEFAULT_SAMPLE_ROWS,
    imatrix: Imatrix | None = None,
    threads: int | None = None,
    types: dict[str, str] | None = None,
) -> Iterator[TensorEvaluation]:
    """Evaluate the plan's tensors (or ``names``), yielding one result per tensor.

    ``types`` maps tensor names to a type to evaluate instead of the planned one (used to
    compare alternatives; with ggml's encoder). Each tensor's planned encoder is used at its
    planned type. Tensors whose type cannot be quantized are skipped.
    """
    wanted = None if names is None else set(names)
    for tp in plan.tensors:
        if wanted is not None and tp.name not in wanted:
            continue
        type_name = (types or {}).get(tp.name, tp.type)
        encoder = tp.encoder if type_name == tp.type else "ggml"
        t = tp.source
        rows = sample_rows(t.n_rows, max_rows)
        values = tensor_importance(imatrix, t)
        try:
            stats = evaluate_tensor(model, t, type_name, rows, values, threads, encoder)
        except QuantError as err:
            raise QuantError(f"{tp.name}: {err}") from None
        yield TensorEvaluation(tp.name, type_name, stats, len(rows), t.n_rows, encoder)
