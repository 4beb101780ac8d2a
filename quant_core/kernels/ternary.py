"""Ternary TQ1_0 and TQ2_0 (256-blocks, imatrix ignored): d = amax, trit = lroundf(x/d) + 1.

TQ1_0 packs five trits per byte as a base-3 fraction (stored as ceil(p*256/243)), TQ2_0 four
2-bit trits per byte. Both keep the fp16 scale at the end of the block.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, store_fp16
from ._rows import dequantize_rows, quantize_rows
from ._simd import first_absmax
from .registry import dequantizer, quantizer

TQ1_BYTES = QTYPES["TQ1_0"].type_size
TQ2_BYTES = QTYPES["TQ2_0"].type_size
POW3 = np.array([1, 3, 9, 27, 81], dtype=np.int64)


@njit(inline="always", **JIT)
def lround_trit(v):
    """``lroundf(v) + 1`` truncated to int as ggml does (NaN/inf: lroundf's LONG_MIN gives 1).

    Selects only (the sign of v is unpredictable, and the byte loops vectorize over them).
    """
    in_range = (v > F32(-4194304.0)) & (v < F32(4194304.0))
    t = np.int32(v) if in_range else np.int32(0)  # truncation toward zero
    up = np.int32(np.abs(v - F32(t)) >= F32(0.5))
    step = up if v > F32(0.0) else -up  # half away from zero
    return t + step + np.int32(1) if in_range else np.int32(1)


@njit(inline="always", **JIT)
def _absmax_scale(x, base, out, o):
    """d = max |x| of the block, stored as fp16 at ``out[o]``; returns the inverse 1/d (0 for 0)."""
    amax, _ = first_absmax(x, base, QK_K)
    store_fp16(out, o, amax)
    return F32(1.0) / amax if amax != F32(0.0) else F32(0.0)


@njit(inline="always", **JIT)
def _trit_bytes(x, start, stride, count, inv, out, o, nbytes, shift):
    """Byte m (< nbytes) = base-3 number of the ``count`` trits x[start + m + k*stride] (first
    most significant), times 3 if ``shift``, stored as ceil(q*256/243)."""
    for m in range(nbytes):
        q = np.int32(0)
        for k in range(count):
            q = (q * np.int32(3) + lround_trit(x[start + m + k * stride] * inv)) & np.int32(0xFF)
        if shift:
            q = (q * np.int32(3)) & np.int32(0xFF)
        out[o + m] = np.uint8(((q * np.int32(256) + np.int32(242)) // np.int32(243)) & np.int32(0xFF))


@njit(**JIT)
def _row_tq1_0(x, qw, out):
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * TQ1_BYTES
        inv = _absmax_scale(x, base, out, o + 52)
        _trit_bytes(x, base, 32, 5, inv, out, o, 32, False)
        _trit_bytes(x, base + 160, 16, 5, inv, out, o + 32, 16, False)
        _trit_bytes(x, base + 240, 4, 4, inv, out, o + 48, 4, True)


@njit(**JIT)
def _row_tq2_0(x, qw, out):
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * TQ2_BYTES
        inv = _absmax_scale(x, base, out, o + 64)
        for half in range(2):
            for m in range(32):
                q = np.int32(0)
                for n in range(4):
                    t = lround_trit(x[base + half * 128 + n * 32 + m] * inv)
                    q += (t & np.int32(3)) << np.int32(2 * n)
                out[o + half * 32 + m] = np.uint8(q & np.int32(0xFF))


@quantizer("TQ1_0")
@njit(**JIT_PARALLEL)
def quantize_tq1_0(x, qw):
    """TQ1_0 rows (ggml's _ref; the importance matrix is ignored)."""
    return quantize_rows(x, qw, _row_tq1_0, QK_K, TQ1_BYTES)


@quantizer("TQ2_0")
@njit(**JIT_PARALLEL)
def quantize_tq2_0(x, qw):
    """TQ2_0 rows (ggml's _ref; the importance matrix is ignored)."""
    return quantize_rows(x, qw, _row_tq2_0, QK_K, TQ2_BYTES)


@njit(inline="always", **JIT)
def _trit(byte, n):
    """Trit n of a TQ1_0 byte: ((uint8)(byte * 3^n) * 3) >> 8."""
    return (((np.int64(byte) * POW3[n]) & 0xFF) * 3) >> 8


@njit(**JIT)
def _dequantize_row_tq1_0(q, y):
    for b in range(y.shape[0] // QK_K):
        o = b * TQ1_BYTES
        yb = b * QK_K
        d = load_fp16(q, o + 52)
        for n in range(5):
            for m in range(32):
                y[yb + n * 32 + m] = d * F32(_trit(q[o + m], n) - 1)
            for m in range(16):
                y[yb + 160 + n * 16 + m] = d * F32(_trit(q[o + 32 + m], n) - 1)
        for n in range(4):
            for j in range(4):
                y[yb + 240 + n * 4 + j] = d * F32(_trit(q[o + 48 + j], n) - 1)


@njit(**JIT)
def _dequantize_row_tq2_0(q, y):
    for b in range(y.shape[0] // QK_K):
        o = b * TQ2_BYTES
        d = load_fp16(q, o + 64)
        for half in range(2):
            for n in range(4):
                for m in range(32):
                    t = (np.int64(q[o + half * 32 + m]) >> (2 * n)) & 3
                    y[b * QK_K + half * 128 + n * 32 + m] = d * F32(t - 1)


@dequantizer("TQ1_0")
@njit(**JIT_PARALLEL)
def dequantize_tq1_0(q, n_per_row):
    """TQ1_0 -> float32: (trit - 1) * d."""
    return dequantize_rows(q, n_per_row, _dequantize_row_tq1_0)


@dequantizer("TQ2_0")
@njit(**JIT_PARALLEL)
def dequantize_tq2_0(q, n_per_row):
    """TQ2_0 -> float32: (trit - 1) * d."""
    return dequantize_rows(q, n_per_row, _dequantize_row_tq2_0)
