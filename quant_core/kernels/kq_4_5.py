"""Q4_K and Q5_K: 256-weight super-blocks of eight 32-groups with 6-bit scales and mins.

Without an imatrix each group is fitted by make_qkx2_quants (weights av_x + |x|) and the eight
scales/mins are rounded to 6 bits against their maximum; with an imatrix the groups use
make_qkx3_quants (weights qw*sqrt(sigma2 + x^2)) and the scales/mins make_qp_quants. Both end
with ggml's requantization of every group against the fp16-rounded super-scales.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, nearest_int, store_fp16, sum_squares
from ._kq_affine import make_qp_quants
from ._kq_affine_batch import fit_groups, fit_groups_imatrix, new_scratch, scale_min_maxima, transpose_groups
from ._kq_codes import requantize_affine
from ._rows import dequantize_rows, quantize_rows
from .registry import dequantizer, quantizer

Q4_K_BYTES = QTYPES["Q4_K"].type_size
Q5_K_BYTES = QTYPES["Q5_K"].type_size


@njit(**JIT)
def get_scale_min_k4(j, q, o):
    """ggml's get_scale_min_k4: 6-bit (scale, min) of group ``j`` from the 12 bytes at q[o]."""
    if j < 4:
        return np.int64(q[o + j]) & 63, np.int64(q[o + j + 4]) & 63
    sc = (np.int64(q[o + j + 4]) & 0xF) | ((np.int64(q[o + j - 4]) >> 6) << 4)
    m = (np.int64(q[o + j + 4]) >> 4) | ((np.int64(q[o + j]) >> 6) << 4)
    return sc, m


@njit(inline="always", **JIT)
def _pack_scale_min(out, o, j, ls, lm):
    """Store 6-bit ``ls``/``lm`` of group j into the 12 scale bytes at out[o] (ggml's order)."""
    ls &= 0xFF
    lm &= 0xFF
    if j < 4:
        out[o + j] = ls
        out[o + j + 4] = lm
    else:
        out[o + j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
        out[o + j - 4] |= (ls >> 4) << 6
        out[o + j] |= (lm >> 4) << 6


@njit(inline="always", **JIT)
def _fit_groups_ref(x, base, nmax, rmin, nstep, s):
    """_ref stage 1: make_qkx2_quants per 32-group with weights av_x + |x| (8 groups at once)."""
    transpose_groups(x, base, 32, 8, s.xt)
    for j in range(8):
        s.sw[j] = F32(0.0)  # here: the group's sum of x^2, then av_x
    for i in range(32):
        for j in range(8):
            s.sw[j] += s.xt[i, j] * s.xt[i, j]
    for j in range(8):
        s.sw[j] = np.sqrt(s.sw[j] / F32(32.0))
    for i in range(32):
        for j in range(8):
            s.wt[i, j] = s.sw[j] + np.abs(s.xt[i, j])
    fit_groups(s, nmax, rmin, F32(0.1), nstep, False, False)


@njit(inline="always", **JIT)
def _scales_ref(s, out, o):
    """_ref stage 2: 6-bit scales/mins relative to their maxima; stores d, dmin, scales."""
    max_scale, max_min = scale_min_maxima(s)
    inv_scale = F32(63.0) / max_scale if max_scale > F32(0.0) else F32(0.0)
    inv_min = F32(63.0) / max_min if max_min > F32(0.0) else F32(0.0)
    for j in range(8):
        ls = min(63, nearest_int(inv_scale * s.scales[j]) & 0xFF)
        lm = min(63, nearest_int(inv_min * s.mins[j]) & 0xFF)
        _pack_scale_min(out, o + 4, j, ls, lm)
    store_fp16(out, o, max_scale / F32(63.0))
    store_fp16(out, o + 2, max_min / F32(63.0))


@njit(inline="always", **JIT)
def _scales_imat(s, clamp63, out, o):
    """Imatrix stage 2: make_qp_quants(8, 63) on scales and mins; stores d, dmin, scales."""
    d_block = make_qp_quants(s.scales, s.sw, s.Ls, 63)
    m_block = make_qp_quants(s.mins, s.sw, s.Lm, 63)
    for j in range(8):
        ls = np.int64(s.Ls[j])
        lm = np.int64(s.Lm[j])
        if clamp63:  # Q5_K clamps again, Q4_K does not
            ls = min(63, ls)
            lm = min(63, lm)
        _pack_scale_min(out, o + 4, j, ls, lm)
    store_fp16(out, o, d_block)
    store_fp16(out, o + 2, m_block)


@njit(inline="always", **JIT)
def _requantize(x, base, nmax, s, out, o):
    """Recompute the codes of every group whose fp16 d * scale is non-zero."""
    d_all = load_fp16(out, o)
    dmin_all = load_fp16(out, o + 2)
    d, dm = s.rq[:8], s.rq[8:16]
    for j in range(8):
        sc, m = get_scale_min_k4(j, out, o + 4)
        d[j] = d_all * F32(sc)
        dm[j] = dmin_all * F32(m)
    requantize_affine(x, base, 32, d, dm, nmax, s.L, s.rq[16:])


@njit(inline="always", **JIT)
def _store_codes(L, five_bits, out, o):
    """Nibble layout per 64-chunk (plus Q5_K's qh bit planes right after the scales)."""
    qs = o + 16 + (32 if five_bits else 0)
    if five_bits:
        for l in range(32):
            out[o + 16 + l] = 0
    for c in range(4):
        for l in range(32):
            lo = np.int64(L[64 * c + l])
            hi = np.int64(L[64 * c + 32 + l])
            if five_bits:
                h = np.int64(out[o + 16 + l])
                if lo > 15:
                    lo -= 16
                    h |= 1 << (2 * c)
                if hi > 15:
                    hi -= 16
                    h |= 2 << (2 * c)
                out[o + 16 + l] = h
            out[qs + 32 * c + l] = lo | (hi << 4)


@njit(inline="always", **JIT)
def _quantize_row(x, qw, out, five_bits):
    nmax = 31 if five_bits else 15
    block_bytes = Q5_K_BYTES if five_bits else Q4_K_BYTES
    s = new_scratch(32, 8)
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * block_bytes
        if qw.shape[0] > 0:
            sigma2 = F32(2.0) * sum_squares(x, base, QK_K) / F32(QK_K)
            fit_groups_imatrix(x, base, qw, sigma2, nmax, s)
            _scales_imat(s, five_bits, out, o)
        else:
            rmin = F32(-0.5) if five_bits else F32(-1.0)
            _fit_groups_ref(x, base, nmax, rmin, 15 if five_bits else 20, s)
            _scales_ref(s, out, o)
        _requantize(x, base, nmax, s, out, o)
        _store_codes(s.L, five_bits, out, o)


@njit(**JIT)
def _quantize_row_q4_k(x, qw, out):
    _quantize_row(x, qw, out, False)


@njit(**JIT)
def _quantize_row_q5_k(x, qw, out):
    _quantize_row(x, qw, out, True)


@quantizer("Q4_K")
@njit(**JIT_PARALLEL)
def quantize_q4_k(x, qw):
    """Q4_K rows, bit-exact with ggml_quantize_chunk (with or without imatrix)."""
    return quantize_rows(x, qw, _quantize_row_q4_k, QK_K, Q4_K_BYTES)


@quantizer("Q5_K")
@njit(**JIT_PARALLEL)
def quantize_q5_k(x, qw):
    """Q5_K rows, bit-exact with ggml_quantize_chunk (with or without imatrix)."""
    return quantize_rows(x, qw, _quantize_row_q5_k, QK_K, Q5_K_BYTES)


@njit(inline="always", **JIT)
def _dequantize_row(q, y, five_bits):
    block_bytes = Q5_K_BYTES if five_bits else Q4_K_BYTES
    for b in range(y.shape[0] // QK_K):
        o = b * block_bytes
        d = load_fp16(q, o)
        dmin = load_fp16(q, o + 2)
        qs = o + 16 + (32 if five_bits else 0)
        for c in range(4):  # 64-chunk c: groups 2c (low nibbles) and 2c+1 (high nibbles)
            sc1, m1 = get_scale_min_k4(2 * c, q, o + 4)
            sc2, m2 = get_scale_min_k4(2 * c + 1, q, o + 4)
            d1, dm1 = d * F32(sc1), dmin * F32(m1)
            d2, dm2 = d * F32(sc2), dmin * F32(m2)
            y0 = b * QK_K + 64 * c
            for l in range(32):
                byte = np.int64(q[qs + 32 * c + l])
                lo = byte & 0xF
                hi = byte >> 4
                if five_bits:
                    h = np.int64(q[o + 16 + l]) >> (2 * c)
                    lo |= (h & 1) << 4
                    hi |= (h & 2) << 3
                y[y0 + l] = d1 * F32(lo) - dm1
                y[y0 + 32 + l] = d2 * F32(hi) - dm2


@njit(**JIT)
def _dequantize_row_q4_k(q, y):
    _dequantize_row(q, y, False)


@njit(**JIT)
def _dequantize_row_q5_k(q, y):
    _dequantize_row(q, y, True)


@dequantizer("Q4_K")
@njit(**JIT_PARALLEL)
def dequantize_q4_k(q, n_per_row):
    """Q4_K rows to float32, bit-identical to gguf.dequantize."""
    return dequantize_rows(q, n_per_row, _dequantize_row_q4_k)


@dequantizer("Q5_K")
@njit(**JIT_PARALLEL)
def dequantize_q5_k(q, n_per_row):
    """Q5_K rows to float32, bit-identical to gguf.dequantize."""
    return dequantize_rows(q, n_per_row, _dequantize_row_q5_k)
