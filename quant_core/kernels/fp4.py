"""MXFP4 (32-blocks, E8M0 scale) and NVFP4 (64-blocks, four UE4M3 scales): E2M1 codes.

Both use the doubled E2M1 table and ggml's nearest-entry search (first minimum of
``|T[i]*d - x|`` wins). The importance matrix is ignored.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QTYPES
from ._common import F32, JIT, JIT_PARALLEL, decode_nibbles, f32_to_u32, u32_to_f32
from ._rows import dequantize_rows, quantize_rows
from ._simd import first_absmax
from .registry import dequantizer, quantizer

KVALUES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)
MX_BLOCK, MX_BYTES = QTYPES["MXFP4"].block_size, QTYPES["MXFP4"].type_size
NV_BLOCK, NV_BYTES = QTYPES["NVFP4"].block_size, QTYPES["NVFP4"].type_size
NV_GROUP = QTYPES["NVFP4"].scale_group  # elements per UE4M3 scale
NV_SCALES = NV_BLOCK // NV_GROUP


def _ue4m3_table() -> np.ndarray:
    """ggml_ue4m3_to_fp32 for every byte (half the UE4M3 value; 0 and 0x7F decode to 0)."""
    table = np.zeros(256, dtype=np.float32)
    for code in range(256):
        exp, man = (code >> 3) & 0xF, code & 7
        if code in (0, 0x7F):
            continue
        raw = man * 2.0**-9 if exp == 0 else (1.0 + man / 8.0) * 2.0 ** (exp - 7)
        table[code] = raw * 0.5  # exact in float32
    return table


UE4M3 = _ue4m3_table()


# Positive half of the table (index k <-> magnitude MAG[k]); MAG[8] pads the k = 7 comparison.
MAG = np.array([0, 1, 2, 3, 4, 6, 8, 12, 12], dtype=np.float32)
# Lower bracket k of a magnitude ratio t = |x|/d, by floor(t) for t in [0, 16).
BRACKET = np.array([0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7], dtype=np.int64)


@njit(**JIT)
def best_index_e2m1_scan(v, d):
    """ggml's best_index_mxfp4: scan all 16 entries, the first minimum of |T[i]*d - v| wins."""
    best = 0
    best_err = np.abs(KVALUES[0] * d - v)
    for i in range(1, 16):
        err = np.abs(KVALUES[i] * d - v)
        if err < best_err:
            best = i
            best_err = err
    return best


@njit(inline="always", **JIT)
def best_index_e2m1(v, d):
    """Same result as :func:`best_index_e2m1_scan` from the two entries bracketing |v|.

    Every product T[i]*d is exact and the error is symmetric in the sign of v, so only the
    magnitudes just below and above |v| can reach the minimum rounded error; on a tie ggml's
    first-index rule keeps the smaller magnitude (lower index on both signs, 0 before -0).
    A misplaced bracket from the rounded ratio only happens next to a table entry, which is
    then the clear winner and belongs to both candidate brackets.
    """
    a = np.abs(v)
    t = a / d
    k = BRACKET[np.int64(t)] if t < F32(16.0) else 7
    # branch-free on the data-dependent parts (sign and bracket side are unpredictable)
    k += np.int64(np.abs(MAG[k + 1] * d - a) < np.abs(MAG[k] * d - a))
    k += 8 * (np.int64(v < F32(0.0)) & np.int64(k > 0))
    return k if d != F32(0.0) else 0


@njit(**JIT)
def e8m0_half(e):
    """ggml_e8m0_to_fp32_half: 2^(e-128) as float32 (denormal patterns for e < 2)."""
    e = np.int64(e)
    bits = (0x00200000 << e) if e < 2 else ((e - 1) << 23)
    return u32_to_f32(np.uint32(bits))


@njit(**JIT)
def mxfp4_exponent(amax):
    """(uint8_t)(floorf(log2f(amax)) - 2 + 127), 0 when amax is 0 (gcc: cvttss2si, low byte)."""
    if not amax > F32(0.0):
        return 0
    f = np.floor(np.log2(amax)) - F32(2.0) + F32(127.0)
    return np.int64(f) & 0xFF


@njit(**JIT)
def _row_mxfp4(x, qw, out):
    for b in range(x.shape[0] // MX_BLOCK):
        base = b * MX_BLOCK
        o = b * MX_BYTES
        amax, _ = first_absmax(x, base, MX_BLOCK)
        e = mxfp4_exponent(amax)
        d = e8m0_half(e)
        out[o] = np.uint8(e)
        for j in range(16):
            lo = best_index_e2m1(x[base + j], d)
            hi = best_index_e2m1(x[base + 16 + j], d)
            out[o + 1 + j] = np.uint8(lo | (hi << 4))


@njit(**JIT)
def fp32_to_ue4m3(v):
    """ggml_fp32_to_ue4m3: round half up on the 3-bit mantissa, subnormals, clamp to 448."""
    if not v > F32(0.0):
        return 0
    if v > F32(448.0):
        v = F32(448.0)
    bits = np.int64(f32_to_u32(v))
    exp = ((bits >> 23) & 0xFF) - 127 + 7
    if exp <= 0:
        man = np.int64(v * F32(512.0) + F32(0.5))
        if man > 7:
            man = 7
        return man if man >= 1 else 0
    if exp >= 15:
        return 0x7E
    man = ((bits >> 20) & 7) + ((bits >> 19) & 1)
    if man > 7:
        man = 0
        exp += 1
        if exp >= 15:
            return 0x7E
    return (exp << 3) | man


@njit(**JIT)
def _row_nvfp4(x, qw, out):
    for b in range(x.shape[0] // NV_BLOCK):
        o = b * NV_BYTES
        for s in range(NV_SCALES):
            base = b * NV_BLOCK + s * NV_GROUP
            amax, _ = first_absmax(x, base, NV_GROUP)
            ue = fp32_to_ue4m3(amax / F32(6.0))
            out[o + s] = np.uint8(ue)
            d = UE4M3[ue]
            for j in range(8):
                lo = best_index_e2m1(x[base + j], d)
                hi = best_index_e2m1(x[base + 8 + j], d)
                out[o + NV_SCALES + s * 8 + j] = np.uint8(lo | (hi << 4))


@quantizer("MXFP4")
@njit(**JIT_PARALLEL)
def quantize_mxfp4(x, qw):
    """MXFP4 rows (ggml's _ref; the importance matrix is ignored)."""
    return quantize_rows(x, qw, _row_mxfp4, MX_BLOCK, MX_BYTES)


@quantizer("NVFP4")
@njit(**JIT_PARALLEL)
def quantize_nvfp4(x, qw):
    """NVFP4 rows (ggml's _ref; the importance matrix is ignored)."""
    return quantize_rows(x, qw, _row_nvfp4, NV_BLOCK, NV_BYTES)


@njit(**JIT)
def _dequantize_row_mxfp4(q, y):
    for b in range(y.shape[0] // MX_BLOCK):
        o = b * MX_BYTES
        decode_nibbles(q, o + 1, 16, KVALUES, e8m0_half(q[o]), y, b * MX_BLOCK)


@njit(**JIT)
def _dequantize_row_nvfp4(q, y):
    for b in range(y.shape[0] // NV_BLOCK):
        o = b * NV_BYTES
        for s in range(NV_SCALES):
            decode_nibbles(q, o + NV_SCALES + s * 8, 8, KVALUES, UE4M3[q[o + s]], y, b * NV_BLOCK + s * NV_GROUP)


@dequantizer("MXFP4")
@njit(**JIT_PARALLEL)
def dequantize_mxfp4(q, n_per_row):
    """MXFP4 -> float32: d * T[q] with d = 2^(e-128)."""
    return dequantize_rows(q, n_per_row, _dequantize_row_mxfp4)


@dequantizer("NVFP4")
@njit(**JIT_PARALLEL)
def dequantize_nvfp4(q, n_per_row):
    """NVFP4 -> float32: d_s * T[q] per 16-element sub-block."""
    return dequantize_rows(q, n_per_row, _dequantize_row_nvfp4)
