"""Shared numba primitives for bit-exact ggml kernels.

Everything here works on float32 scalars and reproduces ggml's scalar C code exactly:
bit casts, fp16 / bf16 rounding, ``nearest_int`` and little-endian stores into a uint8 row.
The bit-cast intrinsics accept float32 only, so an accidental float64 promotion in a kernel
is a compile error instead of a silent mismatch.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

F32 = np.float32

# Options shared by every kernel: cached on disk, GIL released, no fastmath (bit-exactness).
# error_model="numpy": a float division by zero gives inf/nan as in C instead of raising
# (inside prange a raised error would silently leave a row unwritten).
JIT = dict(cache=True, nogil=True, error_model="numpy")
JIT_PARALLEL = dict(cache=True, nogil=True, parallel=True, error_model="numpy")


@intrinsic
def f32_to_u32(typingctx, value):
    """Reinterpret the bits of a float32 as uint32."""
    if value != types.float32:
        return None
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def u32_to_f32(typingctx, value):
    """Reinterpret the bits of a uint32 as float32."""
    if value != types.uint32:
        return None
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(**JIT)
def nearest_int(fval):
    """ggml's nearest_int: round half to even via the 1.5*2^23 trick (valid for |f| <= 4194303)."""
    val = fval + F32(12582912.0)
    i = np.int64(f32_to_u32(val))
    return (i & 0x007FFFFF) - 0x00400000


@njit(**JIT)
def fp32_to_fp16_bits(f):
    """float32 -> IEEE half bits, round to nearest even, overflow to inf, NaN -> 0x7E00."""
    u = np.int64(f32_to_u32(f))
    sign = (u >> 16) & 0x8000
    a = u & 0x7FFFFFFF
    if a > 0x7F800000:
        return np.uint16(sign | 0x7E00)
    if a >= 0x477FF000:  # >= 65520 rounds to infinity
        return np.uint16(sign | 0x7C00)
    if a >= 0x38800000:  # normal half
        h = (a - 0x38000000) >> 13
        rem = a & 0x1FFF
        if rem > 0x1000 or (rem == 0x1000 and (h & 1) == 1):
            h += 1
        return np.uint16(sign | h)
    # subnormal half: an exact power-of-two scaling, then round half to even
    mag = np.abs(f) * F32(16777216.0)
    return np.uint16(sign | np.int64(np.rint(mag)))


@njit(**JIT)
def fp16_bits_to_fp32(h):
    """IEEE half bits -> float32 (exact)."""
    h = np.int64(h)
    sign = (h & 0x8000) << 16
    exp = (h >> 10) & 0x1F
    mant = h & 0x3FF
    if exp == 0:
        mag = F32(mant) * F32(5.9604644775390625e-08)  # mant * 2^-24, exact
        return -mag if sign else mag
    if exp == 31:
        bits = sign | 0x7F800000 | (mant << 13)
    else:
        bits = sign | ((exp + 112) << 23) | (mant << 13)
    return u32_to_f32(np.uint32(bits))


@njit(**JIT)
def round_fp16(f):
    """The float32 value of fp16(f): what ggml reads back after storing a scale as half."""
    return fp16_bits_to_fp32(fp32_to_fp16_bits(f))


@njit(**JIT)
def fp32_to_bf16_bits(f):
    """float32 -> bfloat16 bits as ggml's _ref conversion: RNE, NaN made quiet."""
    u = np.int64(f32_to_u32(f))
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return np.uint16((u >> 16) | 64)
    return np.uint16((u + (0x7FFF + ((u >> 16) & 1))) >> 16)


@njit(inline="always", **JIT)
def store_u16(out, offset, value):
    """Write a 16-bit value little-endian at ``out[offset]``."""
    v = np.int64(value)
    out[offset] = np.uint8(v & 0xFF)
    out[offset + 1] = np.uint8((v >> 8) & 0xFF)


@njit(inline="always", **JIT)
def store_u32(out, offset, value):
    """Write a 32-bit value little-endian at ``out[offset]``."""
    v = np.int64(value)
    for k in range(4):
        out[offset + k] = np.uint8((v >> (8 * k)) & 0xFF)


@njit(inline="always", **JIT)
def store_fp16(out, offset, f):
    """Store ``f`` as fp16 at ``out[offset]`` and return the rounded value as float32."""
    bits = fp32_to_fp16_bits(f)
    store_u16(out, offset, bits)
    return fp16_bits_to_fp32(bits)


@njit(inline="always", **JIT)
def load_u16(q, offset):
    """Read a little-endian 16-bit value."""
    return np.int64(q[offset]) | (np.int64(q[offset + 1]) << 8)


@njit(inline="always", **JIT)
def load_u32(q, offset):
    """Read a little-endian 32-bit value."""
    v = np.int64(0)
    for k in range(4):
        v |= np.int64(q[offset + k]) << (8 * k)
    return v


@njit(inline="always", **JIT)
def load_fp16(q, offset):
    """Read an fp16 value stored little-endian and return it as float32."""
    return fp16_bits_to_fp32(load_u16(q, offset))


@njit(inline="always", **JIT)
def signed_absmax(x, start, n):
    """Signed value of the first element of largest magnitude in ``x[start:start+n]``.

    Returns ``(amax, max)`` with ``amax = |max|``; ties keep the first index (strict ``>``).
    """
    amax = F32(0.0)
    vmax = F32(0.0)
    for j in range(start, start + n):
        v = x[j]
        av = np.abs(v)
        if av > amax:
            amax = av
            vmax = v
    return amax, vmax


NO_IMATRIX = np.zeros(0, dtype=np.float32)
"""What kernels receive instead of ``None``: one signature, ``qw.shape[0] == 0`` means absent."""


@njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc"})
def _row_poison(x):
    """Per row, sum(x * 0): NaN exactly when the row holds a NaN or an infinity.

    Only re-association is allowed (so the reduction vectorises); the value is 0 or NaN
    whatever the order, so this fast-math flag cannot change the answer.
    """
    rows, cols = x.shape
    out = np.zeros(rows, dtype=np.float32)
    for r in prange(rows):
        acc = F32(0.0)
        for c in range(cols):
            acc += x[r, c] * F32(0.0)
        out[r] = acc
    return out


@njit(**JIT)
def _first_bad_in_row(x, r):
    for c in range(x.shape[1]):
        if not np.isfinite(x[r, c]):
            return c
    return -1


@njit(**JIT)
def first_nonfinite(x):
    """Flat index of the first NaN/inf in a 2-D float32 array, or -1 when all are finite."""
    poison = _row_poison(x)
    for r in range(x.shape[0]):
        if poison[r] != poison[r]:
            return r * x.shape[1] + _first_bad_in_row(x, r)
    return -1


@njit(**JIT)
def round_half_away(v):
    """C ``roundf``: round to nearest, halves away from zero (exact, no +0.5 rounding trap)."""
    t = np.trunc(v)
    if np.abs(v - t) >= F32(0.5):
        t += F32(1.0) if v > 0 else F32(-1.0)
    return np.int64(t)


@njit(inline="always", **JIT)
def decode_nibbles(q, o, n, table, d, y, yo):
    """The 2n codes packed in ``q[o:o+n]`` (code j low nibble, code n+j high) as ``d * table[code]``.

    Writes ``y[yo:yo+2n]``: the decoding of the 4-bit table types (IQ4, MXFP4, NVFP4).
    """
    for j in range(n):
        byte = q[o + j]
        y[yo + j] = d * table[byte & 0x0F]
        y[yo + n + j] = d * table[byte >> 4]


@njit(inline="always", **JIT)
def sum_squares(x, start, n):
    """sum of x^2 over ``x[start:start+n]``, added one after the other in float32 as in C."""
    s = F32(0.0)
    for j in range(start, start + n):
        s += x[j] * x[j]
    return s


@njit(inline="always", **JIT)
def element_weights(x, x0, n, qw, sigma2, w):
    """ggml's per-element weights of ``x[x0:x0+n]`` into ``w[0:n]``.

    ``qw[x0+i] * sqrt(sigma2 + x^2)`` with an importance matrix, ``x^2`` without one (``qw``
    of length 0).
    """
    for i in range(n):
        v = x[x0 + i]
        w[i] = qw[x0 + i] * np.sqrt(sigma2 + v * v) if qw.shape[0] > 0 else v * v
