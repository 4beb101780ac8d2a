"""Legacy 32-blocks Q4_0, Q4_1, Q5_0, Q5_1: ggml's _ref quantizers, imatrix paths and dequantizers.

Without an importance matrix ggml runs ``quantize_row_<t>_ref`` (codes from the unrounded fp32
inverse scale, truncation after adding 8.5 / 16.5 / 0.5). With one, the per-row ``_impl``
searches of ``_legacy_imat`` run instead.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._common import F32, JIT, JIT_PARALLEL, load_fp16, load_u32, signed_absmax, store_fp16, store_u32
from ._legacy_imat import imat_row_q4_0, imat_row_q4_1, imat_row_q5_0, imat_row_q5_1
from .registry import dequantizer, quantizer

QK = 32
FLT_MAX = F32(3.4028234663852886e38)


@njit(**JIT)
def trunc_i8(v):
    """C ``(int8_t)v`` for a float32 as gcc emits it on x86-64: cvttss2si, then the low byte.

    NaN and out-of-range values give INT_MIN (low byte 0); in-range values wrap modulo 256.
    """
    if v > F32(-2147483904.0) and v < F32(2147483648.0):
        t = np.int64(v)
    else:
        t = np.int64(-2147483648)
    return ((t & 0xFF) ^ 0x80) - 0x80


@njit(**JIT)
def _min_max(x, base):
    """Block minimum and maximum with ggml's FLT_MAX / -FLT_MAX start."""
    vmin = FLT_MAX
    vmax = -FLT_MAX
    for j in range(base, base + QK):
        v = x[j]
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
    return vmin, vmax


@njit(**JIT)
def _inverse(d):
    return F32(1.0) / d if d != F32(0.0) else F32(0.0)


@njit(**JIT)
def _ref_row_q4_0(x, out):
    for b in range(x.shape[0] // QK):
        base = b * QK
        o = b * 18
        amax, vmax = signed_absmax(x, base, QK)
        d = vmax / F32(-8.0)
        inv = _inverse(d)
        store_fp16(out, o, d)
        for j in range(16):
            lo = min(15, trunc_i8(x[base + j] * inv + F32(8.5))) & 0xFF
            hi = min(15, trunc_i8(x[base + 16 + j] * inv + F32(8.5))) & 0xFF
            out[o + 2 + j] = np.uint8((lo | (hi << 4)) & 0xFF)


@njit(**JIT)
def _ref_row_q4_1(x, out):
    for b in range(x.shape[0] // QK):
        base = b * QK
        o = b * 20
        vmin, vmax = _min_max(x, base)
        d = (vmax - vmin) / F32(15.0)
        inv = _inverse(d)
        store_fp16(out, o, d)
        store_fp16(out, o + 2, vmin)
        for j in range(16):
            lo = min(15, trunc_i8((x[base + j] - vmin) * inv + F32(0.5))) & 0xFF
            hi = min(15, trunc_i8((x[base + 16 + j] - vmin) * inv + F32(0.5))) & 0xFF
            out[o + 4 + j] = np.uint8((lo | (hi << 4)) & 0xFF)


@njit(**JIT)
def _q5_pair(c0, c1, j, out, o):
    """Store the low nibbles of codes j and j+16 at qs[j]; return their fifth bits placed in qh."""
    out[o + 4 + j] = np.uint8((c0 & 0x0F) | ((c1 & 0x0F) << 4))
    return (((c0 >> 4) & 1) << j) | (((c1 >> 4) & 1) << (j + 16))


@njit(**JIT)
def _ref_row_q5_0(x, out):
    for b in range(x.shape[0] // QK):
        base = b * QK
        o = b * 22
        amax, vmax = signed_absmax(x, base, QK)
        d = vmax / F32(-16.0)
        inv = _inverse(d)
        store_fp16(out, o, d)
        qh = np.int64(0)
        for j in range(16):
            c0 = min(31, trunc_i8(x[base + j] * inv + F32(16.5))) & 0xFF
            c1 = min(31, trunc_i8(x[base + 16 + j] * inv + F32(16.5))) & 0xFF
            qh |= _q5_pair(c0, c1, j, out, o + 2)
        store_u32(out, o + 2, qh)


@njit(**JIT)
def _ref_row_q5_1(x, out):
    for b in range(x.shape[0] // QK):
        base = b * QK
        o = b * 24
        vmin, vmax = _min_max(x, base)
        d = (vmax - vmin) / F32(31.0)
        inv = _inverse(d)
        store_fp16(out, o, d)
        store_fp16(out, o + 2, vmin)
        qh = np.int64(0)
        for j in range(16):
            # (uint8_t) of the float: the same cvttss2si low byte as the int8 case
            c0 = trunc_i8((x[base + j] - vmin) * inv + F32(0.5)) & 0xFF
            c1 = trunc_i8((x[base + 16 + j] - vmin) * inv + F32(0.5)) & 0xFF
            qh |= _q5_pair(c0, c1, j, out, o + 4)
        store_u32(out, o + 4, qh)


@quantizer("Q4_0")
@njit(**JIT_PARALLEL)
def quantize_q4_0(x, qw):
    """Q4_0 rows: ggml's _ref without imatrix, the make_qx_quants search with one."""
    out = np.empty((x.shape[0], x.shape[1] // QK * 18), dtype=np.uint8)
    for r in prange(x.shape[0]):
        if qw.shape[0] == 0:
            _ref_row_q4_0(x[r], out[r])
        else:
            imat_row_q4_0(x[r], qw, out[r])
    return out


@quantizer("Q4_1")
@njit(**JIT_PARALLEL)
def quantize_q4_1(x, qw):
    """Q4_1 rows: ggml's _ref without imatrix, the make_qkx3_quants search with one."""
    out = np.empty((x.shape[0], x.shape[1] // QK * 20), dtype=np.uint8)
    for r in prange(x.shape[0]):
        if qw.shape[0] == 0:
            _ref_row_q4_1(x[r], out[r])
        else:
            imat_row_q4_1(x[r], qw, out[r])
    return out


@quantizer("Q5_0")
@njit(**JIT_PARALLEL)
def quantize_q5_0(x, qw):
    """Q5_0 rows: ggml's _ref without imatrix, the make_qx_quants search with one."""
    out = np.empty((x.shape[0], x.shape[1] // QK * 22), dtype=np.uint8)
    for r in prange(x.shape[0]):
        if qw.shape[0] == 0:
            _ref_row_q5_0(x[r], out[r])
        else:
            imat_row_q5_0(x[r], qw, out[r])
    return out


@quantizer("Q5_1")
@njit(**JIT_PARALLEL)
def quantize_q5_1(x, qw):
    """Q5_1 rows: ggml's _ref without imatrix, the make_qkx3_quants search with one."""
    out = np.empty((x.shape[0], x.shape[1] // QK * 24), dtype=np.uint8)
    for r in prange(x.shape[0]):
        if qw.shape[0] == 0:
            _ref_row_q5_1(x[r], out[r])
        else:
            imat_row_q5_1(x[r], qw, out[r])
    return out


@dequantizer("Q4_0")
@njit(**JIT_PARALLEL)
def dequantize_q4_0(q, n_per_row):
    """Q4_0 -> float32: (q - 8) * d."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK):
            o = b * 18
            d = load_fp16(q[r], o)
            for j in range(16):
                byte = np.int64(q[r, o + 2 + j])
                out[r, b * QK + j] = d * F32((byte & 0x0F) - 8)
                out[r, b * QK + 16 + j] = d * F32((byte >> 4) - 8)
    return out


@dequantizer("Q4_1")
@njit(**JIT_PARALLEL)
def dequantize_q4_1(q, n_per_row):
    """Q4_1 -> float32: (d * q) + m, two roundings as gguf-py."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK):
            o = b * 20
            d = load_fp16(q[r], o)
            m = load_fp16(q[r], o + 2)
            for j in range(16):
                byte = np.int64(q[r, o + 4 + j])
                out[r, b * QK + j] = d * F32(byte & 0x0F) + m
                out[r, b * QK + 16 + j] = d * F32(byte >> 4) + m
    return out


@njit(**JIT)
def _q5_code(q, o, j):
    """Five-bit code of element j of a Q5 block whose qh starts at ``q[o]``."""
    qh = load_u32(q, o)
    nib = np.int64(q[o + 4 + (j & 15)])
    nib = (nib & 0x0F) if j < 16 else (nib >> 4)
    return nib | (((qh >> j) & 1) << 4)


@dequantizer("Q5_0")
@njit(**JIT_PARALLEL)
def dequantize_q5_0(q, n_per_row):
    """Q5_0 -> float32: (q - 16) * d."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK):
            o = b * 22
            d = load_fp16(q[r], o)
            for j in range(QK):
                out[r, b * QK + j] = d * F32(_q5_code(q[r], o + 2, j) - 16)
    return out


@dequantizer("Q5_1")
@njit(**JIT_PARALLEL)
def dequantize_q5_1(q, n_per_row):
    """Q5_1 -> float32: (d * q) + m."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK):
            o = b * 24
            d = load_fp16(q[r], o)
            m = load_fp16(q[r], o + 2)
            for j in range(QK):
                out[r, b * QK + j] = d * F32(_q5_code(q[r], o + 4, j)) + m
    return out
