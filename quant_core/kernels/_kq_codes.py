"""Final codes of the K-quants: requantization against the stored scales, 2-bit packing.

After the scales of a super-block are rounded (to 4/6/8 bits and an fp16 super-scale), ggml
recomputes the codes of every group whose resulting scale is non-zero; groups whose scale
rounded to zero keep the codes of the first search.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._common import F32, JIT, nearest_int


@njit(inline="always", **JIT)
def _spread(values, n, each):
    """each[n*j + i] = values[j]: one scale per element, so the code loops run over whole blocks."""
    for j in range(values.shape[0]):
        for i in range(n):
            each[n * j + i] = values[j]


@njit(inline="always", **JIT)
def requantize_symmetric(x, x0, n, dg, nmax, L, work):
    """Group j of n codes: ``L = nmax + clamp(nearest_int(x / dg[j]), -nmax, nmax - 1)`` (Q3_K, Q6_K).

    Groups whose ``dg[j]`` is 0 keep their codes. ``work`` is float32 scratch of the block's
    size: the scales are spread to one per element so that a single loop over the block,
    with a select instead of a branch per group, vectorizes.
    """
    _spread(dg, n, work)
    for k in range(dg.shape[0] * n):
        d = work[k]
        new = nmax + max(-nmax, min(nmax - 1, nearest_int(x[x0 + k] / d)))
        L[k] = new if d != F32(0.0) else np.int64(L[k])


@njit(inline="always", **JIT)
def requantize_affine(x, x0, n, d, dm, nmax, L, work):
    """Group j of n codes: ``L = clamp(nearest_int((x + dm[j]) / d[j]), 0, nmax)`` (Q2_K, Q4_K, Q5_K).

    Groups whose ``d[j]`` is 0 keep their codes; ``work`` is float32 scratch of twice the
    block's size (see :func:`requantize_symmetric`).
    """
    size = d.shape[0] * n
    d_each = work[:size]
    dm_each = work[size : 2 * size]
    _spread(d, n, d_each)
    _spread(dm, n, dm_each)
    for k in range(size):
        dk = d_each[k]
        new = max(0, min(nmax, nearest_int((x[x0 + k] + dm_each[k]) / dk)))
        L[k] = new if dk != F32(0.0) else np.int64(L[k])


@njit(inline="always", **JIT)
def pack_2bit(L, out, o):
    """Low two bits of the 256 codes: byte 32h + l holds codes 128h + l + 32k at bits 2k."""
    for h in range(2):
        for l in range(32):
            e = 128 * h + l
            v = (
                (np.int64(L[e]) & 3)
                | ((np.int64(L[e + 32]) & 3) << 2)
                | ((np.int64(L[e + 64]) & 3) << 4)
                | ((np.int64(L[e + 96]) & 3) << 6)
            )
            out[o + 32 * h + l] = np.uint8(v)
