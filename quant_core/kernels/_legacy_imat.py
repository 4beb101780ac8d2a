"""Imatrix rows of the legacy 32-blocks (ggml's ``quantize_row_<t>_impl``).

Each element's weight is ``qw[i] * sqrt(sigma2 + x[i]^2)`` with ``sigma2 = sum(x^2) / n_per_row``
over the whole row. Q4_0 / Q5_0 then take make_qx_quants' symmetric scale and Q4_1 / Q5_1
make_qkx3_quants' affine fit; the codes of the search are stored as they are (no requantization
with the fp16 scale).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QTYPES
from ._common import F32, JIT, element_weights, store_fp16, store_u32, sum_squares
from ._kq_affine_batch import fit_groups_imatrix, new_scratch
from ._kq_symmetric import make_qx_quants, qx_work

QK = QTYPES["Q4_0"].block_size  # the same for Q4_1, Q5_0 and Q5_1
BATCH = 8  # blocks searched side by side by the imatrix Q4_1 / Q5_1 path


@njit(inline="always", **JIT)
def row_sigma2(x):
    """sum(x^2) / n over the whole row, summed sequentially in float32."""
    return sum_squares(x, 0, x.shape[0]) / F32(x.shape[0])


@njit(inline="always", **JIT)
def pack_pair(c0, c1, out, qs, j, five_bits):
    """Store codes j and j+16 of a block as qs[j] (low / high nibble); return their qh bits.

    The fifth bits go to bits j and j+16 of the block's qh word. As in ggml's Q4 _ref the
    first code is OR-ed in unmasked (a wrapped negative code keeps its high bits).
    """
    out[qs + j] = np.uint8(((c0 & 0x0F if five_bits else c0) | (c1 << 4)) & 0xFF)
    return (((c0 >> 4) & 1) << j) | (((c1 >> 4) & 1) << (j + 16))


@njit(inline="always", **JIT)
def pack_block(L, out, o, five_bits):
    """Store the 32 codes of ``L`` at ``out[o]``: the qh word first with ``five_bits``, then qs."""
    qh = np.int64(0)
    for j in range(16):
        qh |= pack_pair(np.int64(L[j]), np.int64(L[j + 16]), out, o + 4 if five_bits else o, j, five_bits)
    if five_bits:
        store_u32(out, o, qh)


@njit(**JIT)
def imat_row_symmetric(x, qw, out, five_bits):
    """One Q4_0 / Q5_0 row with importance weights: d = make_qx_quants(32, 8 or 16, rmse 1, w)."""
    sigma2 = row_sigma2(x)
    w = np.empty(QK, dtype=np.float32)
    L = np.empty(QK, dtype=np.int8)
    work = qx_work()
    block = 22 if five_bits else 18
    for b in range(x.shape[0] // QK):
        base = b * QK
        element_weights(x, base, QK, qw, sigma2, w)
        d = make_qx_quants(QK, 16 if five_bits else 8, x, base, L, 0, 1, w, 0, work)
        store_fp16(out, b * block, d)
        pack_block(L, out, b * block + 2, five_bits)


@njit(**JIT)
def imat_row_affine(x, qw, out, five_bits):
    """One Q4_1 / Q5_1 row with importance weights: make_qkx3_quants(32, 15 or 31, w, -0.9, 0.05, 36).

    Each block stores fp16 d = scale, fp16 m = min (<= 0), then its codes. Blocks are
    independent, so they are searched BATCH at a time in lockstep (same bytes).
    """
    nmax = 31 if five_bits else 15
    block_bytes = 24 if five_bits else 20
    sigma2 = row_sigma2(x)
    nb = x.shape[0] // QK
    full = nb - nb % BATCH
    sc = new_scratch(QK, BATCH)
    for b0 in range(0, nb, BATCH):
        if b0 == full:  # the last few blocks of the row
            sc = new_scratch(QK, nb - full)
        fit_groups_imatrix(x, b0 * QK, qw, sigma2, nmax, sc)
        for g in range(sc.xt.shape[1]):
            o = (b0 + g) * block_bytes
            store_fp16(out, o, sc.scales[g])
            store_fp16(out, o + 2, -sc.mins[g])
            pack_block(sc.L[QK * g : QK * (g + 1)], out, o + 4, five_bits)
