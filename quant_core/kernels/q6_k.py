"""Q6_K: 256-weight super-blocks, 16 groups of 16 with int8 scales, 6-bit codes, fp16 d.

Block (210 bytes): ql[128] low nibbles, qh[64] top two bits, int8 scales[16], fp16 d.
Value = d * scale_j * (q - 32). Each group's scale comes from make_qx_quants(16, 32) with
weights x^2, or with the raw importance values when an imatrix is given (no sigma term).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, nearest_int, store_fp16
from ._kq_codes import requantize_symmetric
from ._kq_symmetric import GROUP_MAX_EPS, make_qx_quants, qx_work
from ._rows import dequantize_rows, quantize_rows
from .registry import dequantizer, quantizer

BLOCK_BYTES = QTYPES["Q6_K"].type_size
QH_OFF = 128
SC_OFF = 192
D_OFF = 208


@njit(**JIT)
def _pack(L, out, o):
    """Split the 256 codes (0..63) into ql nibbles and qh bit pairs."""
    for half in range(2):
        j = half * 128
        ql = o + half * 64
        qh = o + QH_OFF + half * 32
        for l in range(32):
            q1 = L[j + l]
            q2 = L[j + l + 32]
            q3 = L[j + l + 64]
            q4 = L[j + l + 96]
            out[ql + l] = np.uint8((q1 & 0xF) | ((q3 & 0xF) << 4))
            out[ql + l + 32] = np.uint8((q2 & 0xF) | ((q4 & 0xF) << 4))
            out[qh + l] = np.uint8((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6))


@njit(inline="always", **JIT)
def _quantize_block(x, base, qw, out, o, L, scales, work, rq):
    use_qw = qw.shape[0] > 0
    max_scale = F32(0.0)
    max_abs = F32(0.0)
    for ib in range(16):
        s = make_qx_quants(16, 32, x, base + 16 * ib, L, 16 * ib, 1, qw, base + 16 * ib if use_qw else 0, work)
        scales[ib] = s
        if np.abs(s) > max_abs:
            max_abs = np.abs(s)
            max_scale = s
    if max_abs < GROUP_MAX_EPS:
        for k in range(BLOCK_BYTES):
            out[o + k] = 0
        return
    iscale = F32(-128.0) / max_scale
    d = store_fp16(out, o + D_OFF, F32(1.0) / iscale)
    dg = rq[:16]
    for ib in range(16):
        sc = min(127, nearest_int(iscale * scales[ib]))
        out[o + SC_OFF + ib] = np.uint8(sc & 0xFF)
        dg[ib] = d * F32(sc)
    requantize_symmetric(x, base, 16, dg, 32, L, rq[16:])  # a scale rounded to 0 keeps its codes
    _pack(L, out, o)


@njit(**JIT)
def _quantize_row(x, qw, out):
    L = np.empty(QK_K, dtype=np.int8)
    scales = np.empty(16, dtype=np.float32)
    work = qx_work()
    rq = np.empty(16 + QK_K, dtype=np.float32)
    for b in range(x.shape[0] // QK_K):
        _quantize_block(x, b * QK_K, qw, out, b * BLOCK_BYTES, L, scales, work, rq)


@quantizer("Q6_K")
@njit(**JIT_PARALLEL)
def quantize_q6_k(x, qw):
    """Quantize rows to Q6_K exactly as ggml (quantize_row_q6_K_ref / _impl with imatrix)."""
    return quantize_rows(x, qw, _quantize_row, QK_K, BLOCK_BYTES)


@njit(**JIT)
def _dequantize_row(q, y):
    for b in range(y.shape[0] // QK_K):
        o = b * BLOCK_BYTES
        d = load_fp16(q, o + D_OFF)
        for half in range(2):
            ql = o + half * 64
            qh = o + QH_OFF + half * 32
            sc = o + SC_OFF + half * 8
            yb = b * QK_K + half * 128
            for l in range(32):
                is_ = l // 16
                h = np.int64(q[qh + l])
                lo = np.int64(q[ql + l])
                hi = np.int64(q[ql + l + 32])
                q1 = (lo & 0xF) | ((h & 3) << 4)
                q2 = (hi & 0xF) | (((h >> 2) & 3) << 4)
                q3 = (lo >> 4) | (((h >> 4) & 3) << 4)
                q4 = (hi >> 4) | (((h >> 6) & 3) << 4)
                y[yb + l] = d * F32(np.int8(q[sc + is_])) * F32(q1 - 32)
                y[yb + l + 32] = d * F32(np.int8(q[sc + is_ + 2])) * F32(q2 - 32)
                y[yb + l + 64] = d * F32(np.int8(q[sc + is_ + 4])) * F32(q3 - 32)
                y[yb + l + 96] = d * F32(np.int8(q[sc + is_ + 6])) * F32(q4 - 32)


@dequantizer("Q6_K")
@njit(**JIT_PARALLEL)
def dequantize_q6_k(q, n_per_row):
    """Decode Q6_K rows, bit-identical to gguf-py (d * scale first, then times the code)."""
    return dequantize_rows(q, n_per_row, _dequantize_row)
