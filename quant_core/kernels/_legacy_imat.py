"""Imatrix rows of the legacy 32-blocks (ggml's ``quantize_row_<t>_impl``).

Each element's weight is ``qw[i] * sqrt(sigma2 + x[i]^2)`` with ``sigma2 = sum(x^2) / n_per_row``
over the whole row. Q4_0 / Q5_0 then take make_qx_quants' symmetric scale and Q4_1 / Q5_1
make_qkx3_quants' affine fit; the codes of the search are stored as they are (no requantization
with the fp16 scale).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._common import F32, JIT, store_fp16, store_u32
from ._kq_affine import JIT_NP
from ._kq_affine_batch import affine_search_batch, new_scratch, transpose_groups
from ._kq_symmetric import make_qx_quants, qx_work

QK = 32
BATCH = 8  # blocks searched side by side by the imatrix Q4_1 / Q5_1 path


@njit(**JIT)
def row_sigma2(x):
    """sum(x^2) / n over the whole row, summed sequentially in float32."""
    s = F32(0.0)
    for j in range(x.shape[0]):
        s += x[j] * x[j]
    return s / F32(x.shape[0])


@njit(**JIT)
def block_weights(x, qw, base, sigma2, w):
    """w[j] = qw[base+j] * sqrt(sigma2 + x[base+j]^2) for one 32-block."""
    for j in range(QK):
        v = x[base + j]
        w[j] = qw[base + j] * np.sqrt(sigma2 + v * v)


@njit(**JIT)
def _pack_nibbles(L, out, o):
    for j in range(16):
        out[o + j] = np.uint8((np.int64(L[j]) | (np.int64(L[j + 16]) << 4)) & 0xFF)


@njit(**JIT)
def _pack_q5(L, out, o):
    qh = np.int64(0)
    for j in range(16):
        c0 = np.int64(L[j])
        c1 = np.int64(L[j + 16])
        out[o + 4 + j] = np.uint8((c0 & 0x0F) | ((c1 & 0x0F) << 4))
        qh |= ((c0 & 0x10) >> 4) << j
        qh |= ((c1 & 0x10) >> 4) << (j + 16)
    store_u32(out, o, qh)


@njit(**JIT)
def imat_row_q4_0(x, qw, out):
    """One Q4_0 row with importance weights: d = make_qx_quants(32, 8, rmse 1, w)."""
    sigma2 = row_sigma2(x)
    w = np.empty(QK, dtype=np.float32)
    L = np.empty(QK, dtype=np.int8)
    work = qx_work()
    for b in range(x.shape[0] // QK):
        base = b * QK
        block_weights(x, qw, base, sigma2, w)
        d = make_qx_quants(QK, 8, x, base, L, 0, 1, w, 0, work)
        store_fp16(out, b * 18, d)
        _pack_nibbles(L, out, b * 18 + 2)


@njit(**JIT)
def imat_row_q5_0(x, qw, out):
    """One Q5_0 row with importance weights: d = make_qx_quants(32, 16, rmse 1, w)."""
    sigma2 = row_sigma2(x)
    w = np.empty(QK, dtype=np.float32)
    L = np.empty(QK, dtype=np.int8)
    work = qx_work()
    for b in range(x.shape[0] // QK):
        base = b * QK
        block_weights(x, qw, base, sigma2, w)
        d = make_qx_quants(QK, 16, x, base, L, 0, 1, w, 0, work)
        store_fp16(out, b * 22, d)
        _pack_q5(L, out, b * 22 + 2)


@njit(**JIT_NP)
def _affine_blocks(x, qw, b0, sigma2, nmax, block_bytes, sc, out):
    """make_qkx3_quants on the G blocks starting at block ``b0``, side by side; store them."""
    G = sc.xt.shape[1]
    transpose_groups(x, b0 * QK, QK, G, sc.xt)
    for i in range(QK):
        for g in range(G):
            v = sc.xt[i, g]
            sc.wt[i, g] = qw[(b0 + g) * QK + i] * np.sqrt(sigma2 + v * v)
    affine_search_batch(sc.xt, sc.wt, sc.Lt, sc.Laux, nmax, F32(-0.9), F32(0.05), 36, False, True,
                        sc.scales, sc.mins, sc.st)
    for g in range(G):
        o = (b0 + g) * block_bytes
        store_fp16(out, o, sc.scales[g])
        store_fp16(out, o + 2, -sc.mins[g])
        if nmax == 15:
            _pack_nibbles(sc.Lt[:, g], out, o + 4)
        else:
            _pack_q5(sc.Lt[:, g], out, o + 4)


@njit(**JIT_NP)
def _affine_row(x, qw, out, nmax, block_bytes):
    """Q4_1 (nmax 15) or Q5_1 (nmax 31) row: fp16 d = scale, fp16 m = min (<= 0), then codes.

    Blocks are independent, so they are searched BATCH at a time in lockstep (same bytes).
    """
    sigma2 = row_sigma2(x)
    nb = x.shape[0] // QK
    full = nb - nb % BATCH
    if full > 0:
        sc = new_scratch(QK, BATCH)
        for b0 in range(0, full, BATCH):
            _affine_blocks(x, qw, b0, sigma2, nmax, block_bytes, sc, out)
    if full < nb:
        _affine_blocks(x, qw, full, sigma2, nmax, block_bytes, new_scratch(QK, nb - full), out)


@njit(**JIT)
def imat_row_q4_1(x, qw, out):
    """One Q4_1 row with importance weights: make_qkx3_quants(32, 15, w, -0.9, 0.05, 36)."""
    _affine_row(x, qw, out, 15, 20)


@njit(**JIT)
def imat_row_q5_1(x, qw, out):
    """One Q5_1 row with importance weights: make_qkx3_quants(32, 31, w, -0.9, 0.05, 36)."""
    _affine_row(x, qw, out, 31, 24)
