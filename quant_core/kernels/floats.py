"""Float "quantizers": F32 (copy), F16 (IEEE RNE) and BF16 (ggml's RNE with quiet NaN)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._common import JIT_PARALLEL, fp32_to_bf16_bits
from .registry import dequantizer, quantizer


@quantizer("F32")
def quantize_f32(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    return np.array(x, dtype="<f4", copy=True).view(np.uint8)


@dequantizer("F32")
def dequantize_f32(q: np.ndarray, n_per_row: int) -> np.ndarray:
    return q.view("<f4").astype(np.float32).reshape(-1, n_per_row)


@quantizer("F16")
def quantize_f16(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    # numpy's conversion is round-to-nearest-even, as ggml's GGML_FP32_TO_FP16
    return x.astype("<f2").view(np.uint8)


@dequantizer("F16")
def dequantize_f16(q: np.ndarray, n_per_row: int) -> np.ndarray:
    return q.view("<f2").astype(np.float32).reshape(-1, n_per_row)


@quantizer("BF16")
@njit(**JIT_PARALLEL)
def quantize_bf16(x, qw):
    rows, n = x.shape
    out = np.empty((rows, n), dtype=np.uint16)
    for r in prange(rows):
        for c in range(n):
            out[r, c] = fp32_to_bf16_bits(x[r, c])
    return out.view(np.uint8)


@dequantizer("BF16")
@njit(**JIT_PARALLEL)
def dequantize_bf16(q, n_per_row):
    rows = q.shape[0]
    out = np.empty((rows, n_per_row), dtype=np.uint32)
    for r in prange(rows):
        for c in range(n_per_row):
            out[r, c] = (np.uint32(q[r, 2 * c]) | (np.uint32(q[r, 2 * c + 1]) << 8)) << 16
    return out.view(np.float32)
