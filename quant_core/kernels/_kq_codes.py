"""Final codes of the K-quants: requantization against the stored scales, 2-bit packing.

After the scales of a super-block are rounded (to 4/6/8 bits and an fp16 super-scale), ggml
recomputes the codes of every group whose resulting scale is non-zero; groups whose scale
rounded to zero keep the codes of the first search. The callers do that zero test.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._common import JIT, nearest_int


@njit(inline="always", **JIT)
def requantize_symmetric(x, x0, n, dg, nmax, L, l0):
    """``L[l0+i] = nmax + clamp(nearest_int(x[x0+i] / dg), -nmax, nmax - 1)`` (Q3_K, Q6_K)."""
    for i in range(n):
        L[l0 + i] = nmax + max(-nmax, min(nmax - 1, nearest_int(x[x0 + i] / dg)))


@njit(inline="always", **JIT)
def requantize_affine(x, x0, n, d, dm, nmax, L, l0):
    """``L[l0+i] = clamp(nearest_int((x[x0+i] + dm) / d), 0, nmax)`` (Q2_K, Q4_K, Q5_K)."""
    for i in range(n):
        L[l0 + i] = max(0, min(nmax, nearest_int((x[x0 + i] + dm) / d)))


@njit(inline="always", **JIT)
def pack_2bit(L, out, o):
    """Low two bits of the 256 codes: byte 32h + l holds codes 128h + l + 32k at bits 2k."""
    for h in range(2):
        for l in range(32):
            e = 128 * h + l
            v = ((np.int64(L[e]) & 3) | ((np.int64(L[e + 32]) & 3) << 2)
                 | ((np.int64(L[e + 64]) & 3) << 4) | ((np.int64(L[e + 96]) & 3) << 6))
            out[o + 32 * h + l] = np.uint8(v)
