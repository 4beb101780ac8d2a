"""Q3_K: 256-weight super-blocks, 16 groups of 16 with 6-bit signed scales, 3-bit codes.

Block (110 bytes): hmask[32] (third bit of each code), qs[64] (low two bits, Q2_K packing),
scales[12] (16 six-bit scales stored +32), fp16 d. Value = d * (s_j - 32) * (q - 4).
Without an imatrix each group runs make_q3_quants (ggml's _ref; the groups of four super-blocks
side by side, see ``make_q3_quants_batch``); with one, make_qx_quants
with weights qw * sqrt(sigma2 + x^2), and the 16 scales themselves go through make_qx_quants.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, nearest_int, store_fp16, sum_squares
from ._kq_codes import pack_2bit, requantize_symmetric
from ._kq_symmetric import Q3_BATCH, make_q3_quants_batch, make_qx_quants, q3_scratch, qx_work
from ._rows import dequantize_rows, quantize_rows
from .registry import dequantizer, quantizer

BLOCK_BYTES = QTYPES["Q3_K"].type_size
QS_OFF = 32
SC_OFF = 96
D_OFF = 108


@njit(**JIT)
def _store_scales(ls, out, o):
    """Pack 16 six-bit scale codes: low nibbles in bytes 0-7, top bit pairs in bytes 8-11."""
    for k in range(12):
        out[o + SC_OFF + k] = 0
    for j in range(16):
        l = ls[j]
        if j < 8:
            out[o + SC_OFF + j] = np.uint8(l & 0xF)
        else:
            out[o + SC_OFF + j - 8] |= np.uint8((l & 0xF) << 4)
        out[o + SC_OFF + 8 + j % 4] |= np.uint8((l >> 4) << (2 * (j // 4)))


@njit(**JIT)
def _requantize_and_pack(x, base, d, ls, L, out, o, rq):
    """Final codes with the fp16 super-scale, then the hmask / qs split.

    Groups whose scale d*(s_j-32) is 0 keep the codes of the first stage, as in ggml.
    ``rq`` is float32 scratch of 16 + 256 elements.
    """
    dg = rq[:16]
    for j in range(16):
        dg[j] = d * F32(ls[j] - 32)
    requantize_symmetric(x, base, 16, dg, 4, L, rq[16:])
    # code c = 4*hbit + low2: hbit of element 32*m + l goes to hmask[l] bit m
    for l in range(32):
        h = 0
        for m in range(8):
            h |= (np.int64(L[32 * m + l]) >> 2) << m
        out[o + l] = np.uint8(h)
    pack_2bit(L, out, o + QS_OFF)


@njit(**JIT)
def _scales_ref(x, base, out, o, L, scales, ls, rq):
    """quantize_row_q3_K_ref after the group searches: 6-bit scales, d, final codes."""
    max_scale = F32(0.0)
    amax = F32(0.0)
    for j in range(16):
        s = scales[j]
        if np.abs(s) > amax:
            amax = np.abs(s)
            max_scale = s
    if max_scale != F32(0.0):
        iscale = F32(-32.0) / max_scale
        for j in range(16):
            l = ((nearest_int(iscale * scales[j]) + 128) & 0xFF) - 128  # C stores it in an int8
            ls[j] = max(-32, min(31, l)) + 32
        d = store_fp16(out, o + D_OFF, F32(1.0) / iscale)
    else:
        for j in range(16):
            ls[j] = 0
        d = store_fp16(out, o + D_OFF, F32(0.0))
    _store_scales(ls, out, o)
    _requantize_and_pack(x, base, d, ls, L, out, o, rq)


@njit(**JIT)
def _block_imatrix(x, base, qw, out, o, L, scales, ls, weight, sw, work, rq):
    """quantize_row_q3_K_impl for one block with importance weights."""
    sigma2 = F32(2.0) * sum_squares(x, base, QK_K) / F32(QK_K)
    for j in range(16):
        sumw = F32(0.0)
        for l in range(16):
            v = x[base + 16 * j + l]
            w = qw[base + 16 * j + l] * np.sqrt(sigma2 + v * v)
            weight[l] = w
            sumw += w
        sw[j] = sumw
        scales[j] = make_qx_quants(16, 4, x, base + 16 * j, L, 16 * j, 1, weight, 0, work)
    d_block = make_qx_quants(16, 32, scales, 0, ls, 0, 1, sw, 0, work)
    d = store_fp16(out, o + D_OFF, d_block)
    _store_scales(ls, out, o)
    _requantize_and_pack(x, base, d, ls, L, out, o, rq)


@njit(**JIT)
def _quantize_row(x, qw, out):
    L = np.empty(QK_K, dtype=np.int8)
    ls = np.empty(16, dtype=np.int8)
    scales = np.empty(16, dtype=np.float32)
    rq = np.empty(16 + QK_K, dtype=np.float32)
    nb = x.shape[0] // QK_K
    if qw.shape[0] == 0:
        scratch = q3_scratch()
        Lb = np.empty(QK_K * Q3_BATCH, dtype=np.int8)
        scales_b = np.empty(16 * Q3_BATCH, dtype=np.float32)
        for b0 in range(0, nb, Q3_BATCH):
            nsb = min(Q3_BATCH, nb - b0)
            make_q3_quants_batch(x, b0 * QK_K, nsb, Lb, scales_b, scratch)
            for k in range(nsb):
                b = b0 + k
                _scales_ref(
                    x,
                    b * QK_K,
                    out,
                    b * BLOCK_BYTES,
                    Lb[QK_K * k : QK_K * (k + 1)],
                    scales_b[16 * k : 16 * (k + 1)],
                    ls,
                    rq,
                )
        return
    weight = np.empty(16, dtype=np.float32)
    sw = np.empty(16, dtype=np.float32)
    work = qx_work()
    for b in range(x.shape[0] // QK_K):
        _block_imatrix(x, b * QK_K, qw, out, b * BLOCK_BYTES, L, scales, ls, weight, sw, work, rq)


@quantizer("Q3_K")
@njit(**JIT_PARALLEL)
def quantize_q3_k(x, qw):
    """Quantize rows to Q3_K exactly as ggml (quantize_row_q3_K_ref / _impl with imatrix)."""
    return quantize_rows(x, qw, _quantize_row, QK_K, BLOCK_BYTES)


@njit(**JIT)
def _scale_code(q, o, j):
    """The j-th six-bit scale of the block at ``q[o]``, minus 32."""
    if j < 8:
        low = np.int64(q[o + SC_OFF + j]) & 0xF
    else:
        low = np.int64(q[o + SC_OFF + j - 8]) >> 4
    high = (np.int64(q[o + SC_OFF + 8 + j % 4]) >> (2 * (j // 4))) & 3
    return (low | (high << 4)) - 32


@njit(**JIT)
def _dequantize_row(q, y):
    for b in range(y.shape[0] // QK_K):
        o = b * BLOCK_BYTES
        d = load_fp16(q, o + D_OFF)
        for half in range(2):
            for j in range(4):
                shift = 2 * j
                mask = 1 << (4 * half + j)
                for part in range(2):
                    dl = d * F32(_scale_code(q, o, 8 * half + 2 * j + part))
                    yb = b * QK_K + half * 128 + 32 * j + 16 * part
                    for l in range(16):
                        k = 16 * part + l
                        low = (np.int64(q[o + QS_OFF + half * 32 + k]) >> shift) & 3
                        hbit = np.int64(q[o + k]) & mask
                        y[yb + l] = dl * F32(low - (0 if hbit else 4))


@dequantizer("Q3_K")
@njit(**JIT_PARALLEL)
def dequantize_q3_k(q, n_per_row):
    """Decode Q3_K rows, bit-identical to gguf-py (d * (s - 32) first, then times the code)."""
    return dequantize_rows(q, n_per_row, _dequantize_row)
