"""Sums of squared activations, in llama-imatrix's order and precision (float32, row by row).

Each value is ``acc[j] += x[j] * x[j]`` in float32, rows in the order the graph holds them, as
llama-imatrix accumulates; numpy's reductions would sum in another order (pairwise, or the
rows first), which moves the result by more than the last bits over thousands of rows.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def add_squares_dense(acc: np.ndarray, x: np.ndarray, n02: int, n03: int) -> None:  # pragma: no cover - compiled
    """``acc`` (n_mat, ne0) += squares of ``x`` (ne3, ne2, ne1, ne0); matrix of (i3, i2) as ggml broadcasts."""
    ne3, ne2, ne1, ne0 = x.shape
    for i3 in range(ne3):
        for i2 in range(ne2):
            m = (i3 % n03) * n02 + (i2 % n02)
            for row in range(ne1):
                for j in range(ne0):
                    v = x[i3, i2, row, j]
                    acc[m, j] += v * v


@numba.njit(cache=True, nogil=True)
def add_squares_experts(  # pragma: no cover - compiled
    acc: np.ndarray, counts: np.ndarray, touched: np.ndarray, x: np.ndarray, ids: np.ndarray
) -> bool:
    """Per routed (token, slot): ``acc[expert]`` += squares of the token's input; counts per expert.

    ``x`` is (n_tokens, ne1, ne0) (ne1 is 1 when every slot shares the token's input), ``ids``
    (n_tokens, n_used). Slots outer, tokens inner, as llama-imatrix walks them. Returns False
    at the first expert id out of range (nothing more is added), True otherwise.
    """
    n_tokens, ne1, ne0 = x.shape
    n_as = acc.shape[0]
    for idx in range(ids.shape[1]):
        for row in range(n_tokens):
            ex = ids[row, idx]
            if ex < 0 or ex >= n_as:
                return False
            counts[ex] += 1
            touched[ex] = True
            i11 = idx % ne1
            for j in range(ne0):
                v = x[row, i11, j]
                acc[ex, j] += v * v
    return True
