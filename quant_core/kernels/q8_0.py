"""Q8_0: 32 weights per block, fp16 scale d = amax/127 and int8 codes roundf(x/d)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, round_half_away, store_fp16
from ._rows import dequantize_rows, quantize_rows
from ._simd import first_absmax
from .registry import dequantizer, quantizer

QK = QTYPES["Q8_0"].block_size
BLOCK_BYTES = QTYPES["Q8_0"].type_size


@njit(**JIT)
def _quantize_row(x, qw, out):
    for b in range(x.shape[0] // QK):
        base = b * QK
        amax, _ = first_absmax(x, base, QK)
        d = amax / F32(127.0)
        inv = F32(1.0) / d if d != F32(0.0) else F32(0.0)
        o = b * BLOCK_BYTES
        store_fp16(out, o, d)
        for j in range(QK):
            out[o + 2 + j] = np.uint8(round_half_away(x[base + j] * inv) & 0xFF)


@quantizer("Q8_0")
@njit(**JIT_PARALLEL)
def quantize_q8_0(x, qw):
    """Q8_0 rows (ggml's _ref; the importance matrix is ignored)."""
    return quantize_rows(x, qw, _quantize_row, QK, BLOCK_BYTES)


@njit(**JIT)
def _dequantize_row(q, y):
    for b in range(y.shape[0] // QK):
        o = b * BLOCK_BYTES
        d = load_fp16(q, o)
        for j in range(QK):
            y[b * QK + j] = F32(np.int8(q[o + 2 + j])) * d


@dequantizer("Q8_0")
@njit(**JIT_PARALLEL)
def dequantize_q8_0(q, n_per_row):
    """Q8_0 -> float32: code * d."""
    return dequantize_rows(q, n_per_row, _dequantize_row)
