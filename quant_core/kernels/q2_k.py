"""Q2_K: 256-weight super-blocks of sixteen 16-groups, 2-bit codes, 4-bit scales and mins.

Layout: scales[16] (low nibble scale, high nibble min), qs[64], fp16 d, fp16 dmin. Without an
imatrix each group is fitted by make_qkx2_quants (weights |x|, absolute error) and the scales
and mins are rounded to 4 bits against their maxima; with an imatrix the groups use
make_qkx3_quants (weights qw*sqrt(sigma2 + x^2)) and the scales/mins make_qp_quants. Groups
whose fp16 d * scale is 0 keep their first-stage codes, as in ggml.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, nearest_int, store_fp16, sum_squares
from ._kq_affine import make_qp_quants
from ._kq_affine_batch import fit_groups, fit_groups_imatrix, new_scratch, scale_min_maxima, transpose_groups
from ._kq_codes import pack_2bit, requantize_affine
from ._rows import dequantize_rows, quantize_rows
from .registry import dequantizer, quantizer

BLOCK_BYTES = QTYPES["Q2_K"].type_size
D_OFFSET = 80  # fp16 d, then fp16 dmin at 82


@njit(inline="always", **JIT)
def _stage_ref(x, base, s, out, o):
    """_ref path: make_qkx2_quants per group, then 4-bit scales/mins against their maxima."""
    transpose_groups(x, base, 16, 16, s.xt)
    for i in range(16):
        for j in range(16):
            s.wt[i, j] = np.abs(s.xt[i, j])
    fit_groups(s, 3, F32(-0.5), F32(0.1), 15, True, False)
    round_scales_ref(s, out, o)


@njit(inline="always", **JIT)
def round_scales_ref(s, out, o):
    """The _ref rounding of the 16 group scales/mins to 4 bits against their maxima (with d, dmin)."""
    max_scale, max_min = scale_min_maxima(s)
    if max_scale > F32(0.0):
        iscale = F32(15.0) / max_scale
        for j in range(16):
            out[o + j] = nearest_int(iscale * s.scales[j]) & 0xFF
        store_fp16(out, o + D_OFFSET, max_scale / F32(15.0))
    else:
        for j in range(16):
            out[o + j] = 0
        store_fp16(out, o + D_OFFSET, F32(0.0))
    if max_min > F32(0.0):
        iscale = F32(15.0) / max_min
        for j in range(16):
            out[o + j] |= (nearest_int(iscale * s.mins[j]) << 4) & 0xFF
        store_fp16(out, o + D_OFFSET + 2, max_min / F32(15.0))
    else:
        store_fp16(out, o + D_OFFSET + 2, F32(0.0))


@njit(inline="always", **JIT)
def _stage_imat(x, base, qw, s, out, o):
    """Imatrix path: make_qkx3_quants per group, make_qp_quants(16, 15) on scales and mins."""
    fit_groups_imatrix(x, base, qw, sum_squares(x, base, QK_K) / F32(QK_K), 3, s)
    dm = make_qp_quants(s.scales, s.sw, s.Ls, 15)
    mm = make_qp_quants(s.mins, s.sw, s.Lm, 15)
    store_fp16(out, o + D_OFFSET, dm)
    store_fp16(out, o + D_OFFSET + 2, mm)
    for j in range(16):
        out[o + j] = (np.int64(s.Ls[j]) | (np.int64(s.Lm[j]) << 4)) & 0xFF


@njit(inline="always", **JIT)
def _requantize_and_store(x, base, s, out, o):
    """Recompute codes of groups with non-zero fp16 d * scale, then pack 4 codes per byte."""
    d_all = load_fp16(out, o + D_OFFSET)
    dmin_all = load_fp16(out, o + D_OFFSET + 2)
    d, dm = s.rq[:16], s.rq[16:32]
    for j in range(16):
        sc = np.int64(out[o + j])
        d[j] = d_all * F32(sc & 0xF)
        dm[j] = dmin_all * F32(sc >> 4)
    requantize_affine(x, base, 16, d, dm, 3, s.L, s.rq[32:])
    pack_2bit(s.L, out, o + 16)


@njit(**JIT)
def _quantize_row(x, qw, out):
    s = new_scratch(16, 16)
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * BLOCK_BYTES
        if qw.shape[0] > 0:
            _stage_imat(x, base, qw, s, out, o)
        else:
            _stage_ref(x, base, s, out, o)
        _requantize_and_store(x, base, s, out, o)


@quantizer("Q2_K")
@njit(**JIT_PARALLEL)
def quantize_q2_k(x, qw):
    """Q2_K rows, bit-exact with ggml_quantize_chunk (with or without imatrix)."""
    return quantize_rows(x, qw, _quantize_row, QK_K, BLOCK_BYTES)


@njit(**JIT)
def _dequantize_row(q, y):
    for b in range(y.shape[0] // QK_K):
        o = b * BLOCK_BYTES
        d = load_fp16(q, o + D_OFFSET)
        dmin = load_fp16(q, o + D_OFFSET + 2)
        for g in range(16):
            sc = np.int64(q[o + g])
            dl = d * F32(sc & 0xF)
            ml = dmin * F32(sc >> 4)
            # group g = 8h + 2s + k covers elements 128h + 32s + 16k + (0..15), shift 2s
            h = g >> 3
            s = (g >> 1) & 3
            base = o + 16 + 32 * h + 16 * (g & 1)
            for l in range(16):
                v = (np.int64(q[base + l]) >> (2 * s)) & 3
                y[b * QK_K + 16 * g + l] = dl * F32(v) - ml


@dequantizer("Q2_K")
@njit(**JIT_PARALLEL)
def dequantize_q2_k(q, n_per_row):
    """Q2_K rows to float32, bit-identical to gguf.dequantize."""
    return dequantize_rows(q, n_per_row, _dequantize_row)
