"""Float "quantizers": F32 (copy), F16 (IEEE RNE) and BF16 (ggml's RNE with quiet NaN).

F16 uses branch-free numba conversions (vectorized, parallel over rows) instead of numpy's
astype: same bits, several times faster.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._common import F32, JIT, JIT_PARALLEL, f32_to_u32, fp32_to_bf16_bits, u32_to_f32
from ._simd import stream_copy_u32
from .registry import dequantizer, quantizer

_COPY_CHUNK = 1 << 16  # words per parallel task (a multiple of 8 keeps every task aligned)
_NONFINITE = np.uint32(0x80000000)


@njit(**JIT_PARALLEL)
def copy_f32_checked(x):
    """``(bytes, finite)``: the float32 rows copied as uint8, and whether all are finite.

    One pass over the weights, with streaming stores (see ``_simd.stream_copy_u32``, which
    also checks the exponent bits as it copies).
    """
    rows, n = x.shape
    out = np.empty((rows, 4 * n), dtype=np.uint8)
    src = x.reshape(rows * n).view(np.uint32)
    dst = out.reshape(rows * 4 * n).view(np.uint32)
    total = rows * n
    chunks = (total + _COPY_CHUNK - 1) // _COPY_CHUNK
    seen = np.empty(chunks, dtype=np.uint32)
    aligned = dst.ctypes.data % 32 == 0
    for k in prange(chunks):
        lo = k * _COPY_CHUNK
        hi = min(total, lo + _COPY_CHUNK)
        nvec = (hi - lo) // 8 if aligned else 0
        flags = stream_copy_u32(dst, src, lo, nvec)
        for i in range(lo + 8 * nvec, hi):
            w = src[i]
            dst[i] = w
            flags |= (w & np.uint32(0x7F800000)) + np.uint32(0x00800000)
        seen[k] = flags
    finite = True
    for k in range(chunks):
        finite &= seen[k] < _NONFINITE
    return out, finite


@quantizer("F32")
def quantize_f32(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """F32 is a copy (``quantize`` uses :func:`copy_f32_checked` directly, to check as it copies)."""
    return copy_f32_checked(x)[0]


@dequantizer("F32")
def dequantize_f32(q: np.ndarray, n_per_row: int) -> np.ndarray:
    return q.view("<f4").astype(np.float32).reshape(-1, n_per_row)


_TO_INF = F32(2.0**112)
_TO_ZERO = F32(2.0**-110)
_TWO_M24 = F32(2.0**-24)


@njit(**JIT)
def fp32_to_fp16_bits_nobranch(f):
    """float32 -> IEEE half bits, round to nearest even, NaN -> 0x7E00 | sign.

    Same results as ``fp32_to_fp16_bits`` for every float32, but written with selects only so
    that row loops vectorize. The rounding is done by one float32 addition: adding a power of
    two whose exponent puts the half's last mantissa bit at float32's last bit makes the FPU
    round to nearest even at exactly the right place (subnormal halves included, with the
    exponent clamped at the subnormal one). The two scalings first send values that overflow
    the half range to infinity while keeping tiny ones exact.
    """
    base = (np.abs(f) * _TO_INF) * _TO_ZERO
    w = np.int64(f32_to_u32(f))
    twice = (w + w) & 0xFFFFFFFF  # exponent and mantissa, sign shifted out
    exp_bias = max(twice & 0xFF000000, 0x71000000)
    rounded = u32_to_f32(np.uint32((exp_bias >> 1) + 0x07800000)) + base
    bits = np.int64(f32_to_u32(rounded))
    magnitude = ((bits >> 13) & 0x7C00) + (bits & 0x0FFF)
    return np.uint16(((w >> 16) & 0x8000) | (0x7E00 if twice > 0xFF000000 else magnitude))


@njit(**JIT)
def fp16_bits_to_fp32_nobranch(h):
    """IEEE half bits -> float32, exact; NaN payloads are kept as numpy does (selects only)."""
    a = np.int64(h) & 0x7FFF
    if a >= 0x7C00:
        bits = (a << 13) | 0x7F800000
    elif a >= 0x0400:
        bits = (a << 13) + 0x38000000
    else:
        bits = np.int64(f32_to_u32(F32(a) * _TWO_M24))
    return u32_to_f32(np.uint32(((np.int64(h) & 0x8000) << 16) | bits))


@njit(inline="always", **JIT_PARALLEL)
def _convert_rows(src, out, convert):
    """``out[r, c] = convert(src[r, c])`` for every element, rows in parallel; returns ``out``."""
    for r in prange(src.shape[0]):
        for c in range(src.shape[1]):
            out[r, c] = convert(src[r, c])
    return out


@njit(**JIT)
def _bf16_to_f32_bits(h):
    return np.uint32(h) << np.uint32(16)


@quantizer("F16")
@njit(**JIT_PARALLEL)
def quantize_f16(x, qw):
    """F16 as ggml's GGML_FP32_TO_FP16: IEEE round to nearest even, overflow to inf."""
    out = np.empty(x.shape, dtype=np.uint16)
    return _convert_rows(x, out, fp32_to_fp16_bits_nobranch).view(np.uint8)


@dequantizer("F16")
@njit(**JIT_PARALLEL)
def dequantize_f16(q, n_per_row):
    """F16 rows to float32, bit-identical to numpy's (and gguf-py's) conversion."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    return _convert_rows(q.view(np.uint16), out, fp16_bits_to_fp32_nobranch)


@quantizer("BF16")
@njit(**JIT_PARALLEL)
def quantize_bf16(x, qw):
    """BF16 as ggml's _ref conversion: round to nearest even, NaN made quiet."""
    out = np.empty(x.shape, dtype=np.uint16)
    return _convert_rows(x, out, fp32_to_bf16_bits).view(np.uint8)


@dequantizer("BF16")
@njit(**JIT_PARALLEL)
def dequantize_bf16(q, n_per_row):
    """BF16 rows to float32: the 16 bits become the top half of the float."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.uint32)
    return _convert_rows(q.view(np.uint16), out, _bf16_to_f32_bits).view(np.float32)
