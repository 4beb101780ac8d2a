"""Legacy 32-blocks Q4_0, Q4_1, Q5_0, Q5_1: ggml's _ref quantizers, imatrix paths and dequantizers.

Without an importance matrix ggml runs ``quantize_row_<t>_ref`` (codes from the unrounded fp32
inverse scale, truncation after adding 8.5 / 16.5 / 0.5). With one, the per-row ``_impl``
searches of ``_legacy_imat`` run instead. The four types differ only in two switches, which
every helper takes as compile-time constants: ``affine`` (a min is stored after d: Q4_1, Q5_1)
and ``five_bits`` (a 32-bit qh word of fifth bits before the nibbles: Q5_0, Q5_1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, load_u32, store_fp16, store_u32
from ._legacy_imat import QK, imat_row_affine, imat_row_symmetric, pack_pair
from ._rows import dequantize_rows, quantize_rows
from ._simd import first_absmax, first_min_max
from .registry import dequantizer, quantizer

# kind = 2 * five_bits + affine: Q4_0, Q4_1, Q5_0, Q5_1
BLOCK_BYTES = tuple(QTYPES[name].type_size for name in ("Q4_0", "Q4_1", "Q5_0", "Q5_1"))


@njit(inline="always", **JIT)
def trunc_i8(v):
    """C ``(int8_t)v`` for a float32 as gcc emits it on x86-64: cvttss2si, then the low byte.

    NaN and out-of-range values give INT_MIN (low byte 0); in-range values wrap modulo 256.
    Written with a select so that the code loops vectorize.
    """
    in_range = (v > F32(-2147483904.0)) & (v < F32(2147483648.0))
    t = np.int32(v) if in_range else np.int32(-2147483648)
    return np.int32(np.int8(t))


@njit(inline="always", **JIT)
def _ref_block(x, base, out, o, affine, five_bits):
    """One block of quantize_row_<t>_ref at ``out[o]``."""
    top = 31 if five_bits else 15
    if affine:
        vmin, vmax = first_min_max(x, base, QK)
        d = (vmax - vmin) / F32(top)
        store_fp16(out, o + 2, vmin)
        bias = F32(0.5)
    else:
        _amax, vmax = first_absmax(x, base, QK)
        vmin = F32(0.0)  # x - 0 == x exactly, so the symmetric codes are unchanged
        d = vmax / F32(-16.0 if five_bits else -8.0)
        bias = F32(16.5 if five_bits else 8.5)
    store_fp16(out, o, d)
    inv = F32(1.0) / d if d != F32(0.0) else F32(0.0)
    qh_at = o + (4 if affine else 2)
    qs = qh_at + (4 if five_bits else 0)
    clamp = not (affine and five_bits)  # Q5_1 casts to uint8 without a MIN
    qh = np.int64(0)
    for j in range(16):
        c0 = trunc_i8((x[base + j] - vmin) * inv + bias)
        c1 = trunc_i8((x[base + 16 + j] - vmin) * inv + bias)
        if clamp:
            c0 = min(np.int32(top), c0)
            c1 = min(np.int32(top), c1)
        qh |= pack_pair(np.int64(c0 & 0xFF), np.int64(c1 & 0xFF), out, qs, j, five_bits)
    if five_bits:
        store_u32(out, qh_at, qh)


@njit(inline="always", **JIT)
def _ref_row(x, out, affine, five_bits):
    block = BLOCK_BYTES[2 * five_bits + affine]
    for b in range(x.shape[0] // QK):
        _ref_block(x, b * QK, out, b * block, affine, five_bits)


@njit(inline="always", **JIT)
def _quantize_row(x, qw, out, affine, five_bits):
    if qw.shape[0] > 0:
        if affine:
            imat_row_affine(x, qw, out, five_bits)
        else:
            imat_row_symmetric(x, qw, out, five_bits)
    else:
        _ref_row(x, out, affine, five_bits)


@njit(**JIT)
def _row_q4_0(x, qw, out):
    _quantize_row(x, qw, out, False, False)


@njit(**JIT)
def _row_q4_1(x, qw, out):
    _quantize_row(x, qw, out, True, False)


@njit(**JIT)
def _row_q5_0(x, qw, out):
    _quantize_row(x, qw, out, False, True)


@njit(**JIT)
def _row_q5_1(x, qw, out):
    _quantize_row(x, qw, out, True, True)


@quantizer("Q4_0")
@njit(**JIT_PARALLEL)
def quantize_q4_0(x, qw):
    """Q4_0 rows: ggml's _ref without imatrix, the make_qx_quants search with one."""
    return quantize_rows(x, qw, _row_q4_0, QK, BLOCK_BYTES[0])


@quantizer("Q4_1")
@njit(**JIT_PARALLEL)
def quantize_q4_1(x, qw):
    """Q4_1 rows: ggml's _ref without imatrix, the make_qkx3_quants search with one."""
    return quantize_rows(x, qw, _row_q4_1, QK, BLOCK_BYTES[1])


@quantizer("Q5_0")
@njit(**JIT_PARALLEL)
def quantize_q5_0(x, qw):
    """Q5_0 rows: ggml's _ref without imatrix, the make_qx_quants search with one."""
    return quantize_rows(x, qw, _row_q5_0, QK, BLOCK_BYTES[2])


@quantizer("Q5_1")
@njit(**JIT_PARALLEL)
def quantize_q5_1(x, qw):
    """Q5_1 rows: ggml's _ref without imatrix, the make_qkx3_quants search with one."""
    return quantize_rows(x, qw, _row_q5_1, QK, BLOCK_BYTES[3])


@njit(inline="always", **JIT)
def _dequantize_row(q, y, affine, five_bits):
    block = BLOCK_BYTES[2 * five_bits + affine]
    offset = 0 if affine else (16 if five_bits else 8)
    qs = (4 if affine else 2) + (4 if five_bits else 0)
    for b in range(y.shape[0] // QK):
        o = b * block
        d = load_fp16(q, o)
        m = load_fp16(q, o + 2) if affine else F32(0.0)
        qh = load_u32(q, o + qs - 4) if five_bits else 0
        for j in range(16):
            byte = np.int64(q[o + qs + j])
            lo = byte & 0x0F
            hi = byte >> 4
            if five_bits:
                lo |= ((qh >> j) & 1) << 4
                hi |= ((qh >> (j + 16)) & 1) << 4
            if affine:  # (d * q) + m, two roundings as gguf-py
                y[b * QK + j] = d * F32(lo) + m
                y[b * QK + 16 + j] = d * F32(hi) + m
            else:
                y[b * QK + j] = d * F32(lo - offset)
                y[b * QK + 16 + j] = d * F32(hi - offset)


@njit(**JIT)
def _dequantize_row_q4_0(q, y):
    _dequantize_row(q, y, False, False)


@njit(**JIT)
def _dequantize_row_q4_1(q, y):
    _dequantize_row(q, y, True, False)


@njit(**JIT)
def _dequantize_row_q5_0(q, y):
    _dequantize_row(q, y, False, True)


@njit(**JIT)
def _dequantize_row_q5_1(q, y):
    _dequantize_row(q, y, True, True)


@dequantizer("Q4_0")
@njit(**JIT_PARALLEL)
def dequantize_q4_0(q, n_per_row):
    """Q4_0 -> float32: (q - 8) * d."""
    return dequantize_rows(q, n_per_row, _dequantize_row_q4_0)


@dequantizer("Q4_1")
@njit(**JIT_PARALLEL)
def dequantize_q4_1(q, n_per_row):
    """Q4_1 -> float32: (d * q) + m."""
    return dequantize_rows(q, n_per_row, _dequantize_row_q4_1)


@dequantizer("Q5_0")
@njit(**JIT_PARALLEL)
def dequantize_q5_0(q, n_per_row):
    """Q5_0 -> float32: (q - 16) * d."""
    return dequantize_rows(q, n_per_row, _dequantize_row_q5_0)


@dequantizer("Q5_1")
@njit(**JIT_PARALLEL)
def dequantize_q5_1(q, n_per_row):
    """Q5_1 -> float32: (d * q) + m."""
    return dequantize_rows(q, n_per_row, _dequantize_row_q5_1)
