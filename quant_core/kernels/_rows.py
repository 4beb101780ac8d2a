"""Row drivers shared by the kernels: allocate the result, run a row function on every row.

Each registered kernel is a three-line ``@njit(**JIT_PARALLEL)`` function passing its row
function here; both drivers are inlined into it (``inline="always"``), so the rows run in
that kernel's own parallel loop and the row function is called directly. Rows are
independent, so the result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import QuantError
from ._common import JIT_PARALLEL


@njit(inline="always", **JIT_PARALLEL)
def quantize_rows(x, qw, row_fn, block_elems, block_bytes):
    """uint8 (rows, row_bytes) with ``row_fn(x[r], qw, out[r])`` run on every row in parallel."""
    out = np.empty((x.shape[0], x.shape[1] // block_elems * block_bytes), dtype=np.uint8)
    for r in prange(x.shape[0]):
        row_fn(x[r], qw, out[r])
    return out


@njit(inline="always", **JIT_PARALLEL)
def dequantize_rows(q, n_per_row, row_fn):
    """float32 (rows, n_per_row) with ``row_fn(q[r], y[r])`` run on every row in parallel."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        row_fn(q[r], out[r])
    return out


@njit(inline="always", **JIT_PARALLEL)
def quantize_rows_with(x, qw, row_fn, block_elems, block_bytes, tables):
    """:func:`quantize_rows` for row functions that read lookup tables and may fail.

    ``row_fn(x[r], qw, out[r], tables)`` returns True where ggml would abort on that row.
    Returns ``(out, failed)`` with one flag per row (see :func:`checked_rows`).
    """
    out = np.empty((x.shape[0], x.shape[1] // block_elems * block_bytes), dtype=np.uint8)
    failed = np.zeros(x.shape[0], dtype=np.bool_)
    for r in prange(x.shape[0]):
        failed[r] = row_fn(x[r], qw, out[r], tables)
    return out, failed


@njit(inline="always", **JIT_PARALLEL)
def dequantize_rows_with(q, n_per_row, row_fn, tables):
    """:func:`dequantize_rows` for row functions that read lookup tables: ``row_fn(q[r], y[r], tables)``."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        row_fn(q[r], out[r], tables)
    return out


def checked_rows(type_name: str, out: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """``out``, unless a row failed: then the QuantError ggml's abort becomes here."""
    if failed.any():
        raise QuantError(
            f"{type_name}: row {int(np.argmax(failed))} has weights too large for the grid search "
            "(the weighted distances overflow float32; ggml aborts on this input)"
        )
    return out
