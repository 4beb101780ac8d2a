"""An interim cost table from weights alone: relative error energy on sampled rows.

Used when no measured sensitivity table is available (``quant_core.sensitivity`` needs llama.cpp
through the ``quality`` extra). Each tensor's cost at a type is ``rel_rmse²`` of its sampled rows
quantized and dequantized by the real kernels (importance-weighted when an imatrix has values for
it): the noise-to-signal energy, with every tensor assumed equally sensitive. It ranks types
within a tensor correctly but knows nothing of which tensors matter to the model's output, so it
is a stand-in, not a prediction of ΔKLD.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..evaluate import sample_rows
from ..imatrix import tensor_importance
from ..model import Model
from ..plan import Plan
from ..quantize import dequantize, quantize
from ..stats import error_stats
from .candidates import candidate_types

DEFAULT_TYPES: tuple[str, ...] = (
    "Q2_K", "Q3_K", "IQ3_S", "IQ4_XS", "Q4_K", "Q5_K", "Q6_K", "Q8_0", "F16", "IQ2_XS", "IQ3_XXS",
)  # fmt: skip
INTERIM_ROWS = 32


def iter_weight_error_costs(
    model: Model,
    plan: Plan,
    imatrix: Any | None = None,
    types: Sequence[str] = DEFAULT_TYPES,
    rows: int = INTERIM_ROWS,
    threads: int | None = None,
) -> Iterator[tuple[int, int, dict[str, dict[str, float]]]]:
    """Yield ``(done, total, table)`` after each tensor; the last ``table`` is complete."""
    tensors = [tp for tp in plan.tensors if tp.quantizable]
    table: dict[str, dict[str, float]] = {}
    for i, tp in enumerate(tensors):
        idx = sample_rows(tp.source.n_rows, rows)
        x = np.ascontiguousarray(model.rows_f32(tp.source.name, idx))
        if len(tp.source.shape) > 2:
            importance = None  # stacked experts: one row sample cannot tell whose importance applies
        else:
            importance = tensor_importance(imatrix, tp.source)
        costs = {}
        for t in candidate_types(tp, types, imatrix, plan.options.allow_requantize, plan.file_type.name):
            if t == tp.source.src_type:
                costs[t] = 0.0
                continue
            q = quantize(x, t, imatrix=importance, threads=threads)
            s = error_stats(x, dequantize(q, t, tp.source.n_per_row))
            costs[t] = float(s.rel_rmse) ** 2 if np.isfinite(s.rel_rmse) else 0.0
        table[tp.name] = costs
        yield i + 1, len(tensors), table


def weight_error_costs(
    model: Model, plan: Plan, imatrix: Any | None = None, types: Sequence[str] = DEFAULT_TYPES
) -> dict[str, dict[str, float]]:
    """The whole interim table (see the module docstring)."""
    last: dict[str, dict[str, float]] = {}
    for _done, _total, partial in iter_weight_error_costs(model, plan, imatrix, types):
        last = partial
    return last
