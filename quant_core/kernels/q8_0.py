"""Q8_0: 32 weights per block, fp16 scale d = amax/127 and int8 codes roundf(x/d)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._common import F32, JIT, JIT_PARALLEL, load_fp16, round_half_away, store_fp16
from .registry import dequantizer, quantizer

QK = 32
BLOCK_BYTES = 34


@njit(**JIT)
def _quantize_row(x, out):
    for b in range(x.shape[0] // QK):
        base = b * QK
        amax = F32(0.0)
        for j in range(QK):
            amax = max(amax, np.abs(x[base + j]))
        d = amax / F32(127.0)
        inv = F32(1.0) / d if d != F32(0.0) else F32(0.0)
        o = b * BLOCK_BYTES
        store_fp16(out, o, d)
        for j in range(QK):
            out[o + 2 + j] = np.uint8(round_half_away(x[base + j] * inv) & 0xFF)


@quantizer("Q8_0")
@njit(**JIT_PARALLEL)
def quantize_q8_0(x, qw):
    out = np.empty((x.shape[0], x.shape[1] // QK * BLOCK_BYTES), dtype=np.uint8)
    for r in prange(x.shape[0]):
        _quantize_row(x[r], out[r])
    return out


@dequantizer("Q8_0")
@njit(**JIT_PARALLEL)
def dequantize_q8_0(q, n_per_row):
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    for r in prange(q.shape[0]):
        for b in range(n_per_row // QK):
            o = b * BLOCK_BYTES
            d = load_fp16(q[r], o)
            for j in range(QK):
                out[r, b * QK + j] = F32(np.int8(q[r, o + 2 + j])) * d
    return out
