"""Ternary TQ1_0 and TQ2_0 (256-blocks, imatrix ignored): d = amax, trit = lroundf(x/d) + 1.

TQ1_0 packs five trits per byte as a base-3 fraction (stored as ceil(p*256/243)), TQ2_0 four
2-bit trits per byte. Both keep the fp16 scale at the end of the block.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._common import F32, JIT, JIT_PARALLEL, load_fp16, store_fp16
from .registry import dequantizer, quantizer

QK_K = 256
TQ1_BYTES = 54
TQ2_BYTES = 66
POW3 = np.array([1, 3, 9, 27, 81], dtype=np.int64)


@njit(**JIT)
def lround_trit(v):
    """``lroundf(v) + 1`` truncated to int as ggml does (NaN/inf: lroundf's LONG_MIN gives 1)."""
    if not (v > F32(-4194304.0) and v < F32(4194304.0)):
        return 1
    t = np.int64(v)  # truncation toward zero
    # branch-free half-away-from-zero step (the sign of v is unpredictable)
    up = np.int64(np.abs(v - F32(t)) >= F32(0.5))
    return t + up * (np.int64(v > F32(0.0)) * 2 - 1) + 1


@njit(**JIT)
def _absmax_scale(x, base):
    amax = F32(0.0)
    for j in range(base, base + QK_K):
        amax = max(amax, np.abs(x[j]))
    inv = F32(1.0) / amax if amax != F32(0.0) else F32(0.0)
    return amax, inv


@njit(**JIT)
def _pack_trits(x, start, stride, count, inv):
    """Base-3 number of ``count`` trits x[start + k*stride] (first most significant), as uint8."""
    q = 0
    for k in range(count):
        q = (q * 3 + lround_trit(x[start + k * stride] * inv)) & 0xFF
    return q


@njit(**JIT)
def _ceil_243(q):
    return ((q * 256 + 242) // 243) & 0xFF


@njit(**JIT)
def _row_tq1_0(x, out):
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * TQ1_BYTES
        d, inv = _absmax_scale(x, base)
        store_fp16(out, o + 52, d)
        for m in range(32):
            out[o + m] = np.uint8(_ceil_243(_pack_trits(x, base + m, 32, 5, inv)))
        for m in range(16):
            out[o + 32 + m] = np.uint8(_ceil_243(_pack_trits(x, base + 160 + m, 16, 5, inv)))
        for j in range(4):
            q = (_pack_trits(x, base + 240 + j, 4, 4, inv) * 3) & 0xFF
            out[o + 48 + j] = np.uint8(_ceil_243(q))


@njit(**JIT)
def _row_tq2_0(x, out):
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * TQ2_BYTES
        d, inv = _absmax_scale(x, base)
        store_fp16(out, o + 64, d)
        for half in range(2):
            for m in range(32):
                q = 0
                for n in range(4):
                    t = lround_trit(x[base + half * 128 + n * 32 + m] * inv)
                    q += (t & 3) << (2 * n)
                out[o + half * 32 + m] = np.uint8(q & 0xFF)


@quantizer("TQ1_0")
@njit(**JIT_PARALLEL)
def quantize_tq1_0(x, qw):
    """TQ1_0 rows (ggml's _ref; the importance matrix is ignored)."""
    out = np.empty((x.shape[0], x.shape[1] // QK_K * TQ1_BYTES), dtype=np.uint8)
    for r in prange(x.shape[0]):
        _row_tq1_0(x[r], out[r])
    return out


@quantizer("TQ2_0")
@njit(**JIT_PARALLEL)
def quantize_tq2_0(x, qw):
    """TQ2_0 rows (ggml's _ref; the importance matrix is ignored)."""
    out = np.empty((x.shape[0], x.shape[1] // QK_K * TQ2_BYTES), dtype=np.uint8)
    for r in prange(x.shape[0]):
        _row_tq2_0(x[r], out[r])
    return out


@njit(**JIT)
def _trit(byte, n):
    """Trit n of a TQ1_0 byte: ((uint8)(byte * 3^n) * 3) >> 8."""
    return (((np.int64(byte) * POW3[n]) & 0xFF) * 3) >> 8


@dequantizer("TQ1_0")
@njit(**JIT_PARALLEL)
def dequantize_tq1_0(q, n_per_row):
    """TQ1_0 -> float32: (trit - 1) * d."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK_K):
            o = b * TQ1_BYTES
            y = b * QK_K
            d = load_fp16(q[r], o + 52)
            for n in range(5):
                for m in range(32):
                    out[r, y + n * 32 + m] = d * F32(_trit(q[r, o + m], n) - 1)
                for m in range(16):
                    out[r, y + 160 + n * 16 + m] = d * F32(_trit(q[r, o + 32 + m], n) - 1)
            for n in range(4):
                for j in range(4):
                    out[r, y + 240 + n * 4 + j] = d * F32(_trit(q[r, o + 48 + j], n) - 1)
    return out


@dequantizer("TQ2_0")
@njit(**JIT_PARALLEL)
def dequantize_tq2_0(q, n_per_row):
    """TQ2_0 -> float32: (trit - 1) * d."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK_K):
            o = b * TQ2_BYTES
            d = load_fp16(q[r], o + 64)
            for half in range(2):
                for n in range(4):
                    for m in range(32):
                        t = (np.int64(q[r, o + half * 32 + m]) >> (2 * n)) & 3
                        out[r, b * QK_K + half * 128 + n * 32 + m] = d * F32(t - 1)
    return out
