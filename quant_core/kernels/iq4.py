"""IQ4_NL and IQ4_XS: 4-bit codes into the non-linear table kvalues_iq4nl.

Both types share ggml's ``quantize_row_iq4_nl_impl`` with ``ntry = 7`` (what llama-quantize
runs): each 32-block gets a float scale from a weighted least-squares fit over 16 candidate
inverse scales. IQ4_NL stores that scale as fp16 and reassigns the codes with its float32
inverse; IQ4_XS quantizes the eight block scales of a 256-superblock to 6 bits against
``d = -max_scale/32`` and reassigns the codes with ``1/(d*l)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import (
    F32,
    JIT,
    JIT_PARALLEL,
    decode_nibbles,
    element_weights,
    load_fp16,
    load_u16,
    nearest_int,
    store_fp16,
    store_u16,
    sum_squares,
)
from ._rows import dequantize_rows, quantize_rows
from ._simd import first_absmax
from .registry import dequantizer, quantizer

QK = QTYPES["IQ4_NL"].block_size
NL_BLOCK_BYTES = QTYPES["IQ4_NL"].type_size
XS_BLOCK_BYTES = QTYPES["IQ4_XS"].type_size
NTRY = 7
GROUP_MAX_EPS = F32(1e-15)

KVALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float32)
# MIDSUM[j] = KVALUES[j-1] + KVALUES[j]: x picks entry j once 2x reaches it (exact, ties go up).
MIDSUM = np.zeros(16, dtype=np.float32)
MIDSUM[1:] = KVALUES[:-1] + KVALUES[1:]
# STEP[k] = KVALUES[k] - KVALUES[k-1]: KVALUES[i] = KVALUES[0] + STEP[1] + ... + STEP[i], exactly.
STEP = np.zeros(16, dtype=np.float32)
STEP[1:] = KVALUES[1:] - KVALUES[:-1]
NTRIAL = 2 * NTRY + 2


@njit(**JIT)
def best_index_iq4(x):
    """ggml's best_index_int8 over kvalues_iq4nl: nearest entry, ties to the upper one, saturating.

    The midpoints are sorted, so the index is the number of them that 2x reaches: a branch-free
    count (the comparisons mispredict often as branches) that also vectorises.
    """
    x2 = x + x
    c = np.int32(0)
    for k in range(1, 16):
        c += np.int32(x2 >= MIDSUM[k])
    return c


@njit(**JIT)
def _sigma2(x, base, n):
    """2·Σx²/n over ``x[base:base+n]`` (sequential sum, then one multiply as in C)."""
    return sum_squares(x, base, n) * (F32(2.0) / F32(n))


@njit(**JIT)
def _step(a2, k):
    return STEP[k] if a2 >= MIDSUM[k] else F32(0.0)


@njit(**JIT)
def _table_value(a2):
    """KVALUES[best_index_iq4(a2/2)] without a table lookup or a branch.

    A sum of the steps whose midpoint ``a2`` reaches; every partial sum is a small integer, so
    the tree order is exact and keeps the dependency chain short.
    """
    lo = ((KVALUES[0] + _step(a2, 1)) + (_step(a2, 2) + _step(a2, 3))) + (
        (_step(a2, 4) + _step(a2, 5)) + (_step(a2, 6) + _step(a2, 7))
    )
    hi = ((_step(a2, 8) + _step(a2, 9)) + (_step(a2, 10) + _step(a2, 11))) + (
        (_step(a2, 12) + _step(a2, 13)) + (_step(a2, 14) + _step(a2, 15))
    )
    return lo + hi


@njit(**JIT)
def _search_sums(x, base, w, ids, sqx, sq2):
    """Σw·q·x and Σw·q² of the codes of ``ids[t]·x`` for all 16 trial inverse scales at once.

    Each trial keeps its own sequential sum over the 32 elements (ggml's order); running the
    trials side by side lets the compiler vectorise across them.
    """
    for t in range(NTRIAL):
        sqx[t] = F32(0.0)
        sq2[t] = F32(0.0)
    for j in range(QK):
        xv = x[base + j]
        wj = w[j]
        for t in range(NTRIAL):
            a = ids[t] * xv
            q = _table_value(a + a)
            wq = wj * q
            sqx[t] += wq * xv
            sq2[t] += wq * q


@njit(**JIT)
def _block_scale(x, base, w, ids, sqx, sq2):
    """Float scale of one 32-block (the ntry = 7 search); 0 for a (near) zero block."""
    amax, vmax = first_absmax(x, base, QK)
    if amax < GROUP_MAX_EPS:
        return F32(0.0)
    # trial 0 is the initial guess d0 = max/127, trials 1..15 are itry = -7..7
    ids[0] = F32(1.0) / (-vmax / KVALUES[0])
    for t in range(1, NTRIAL):
        ids[t] = F32(t - 8 - 127) / vmax
    _search_sums(x, base, w, ids, sqx, sq2)
    d = sqx[0] / sq2[0] if sq2[0] > F32(0.0) else F32(0.0)
    best = d * sqx[0]
    for t in range(1, NTRIAL):
        sumqx = sqx[t]
        sumq2 = sq2[t]
        if sumq2 > F32(0.0) and sumqx * sumqx > best * sumq2:
            d = sumqx / sumq2
            best = d * sumqx
    return d


@njit(**JIT)
def _store_codes(x, base, idscale, out, o):
    """Write the 32 codes of ``idscale·x`` in nibble layout (element j low, j + 16 high)."""
    for j in range(16):
        lo = best_index_iq4(idscale * x[base + j])
        hi = best_index_iq4(idscale * x[base + 16 + j])
        out[o + j] = np.uint8(lo | (hi << 4))


@njit(**JIT)
def _quantize_row_nl(x, qw, out):
    w = np.empty(QK, dtype=np.float32)
    ids = np.empty(NTRIAL, dtype=np.float32)
    sqx = np.empty(NTRIAL, dtype=np.float32)
    sq2 = np.empty(NTRIAL, dtype=np.float32)
    for b in range(x.shape[0] // QK):
        base = b * QK
        sigma2 = _sigma2(x, base, QK) if qw.shape[0] != 0 else F32(0.0)
        element_weights(x, base, QK, qw, sigma2, w)
        d = _block_scale(x, base, w, ids, sqx, sq2)
        o = b * NL_BLOCK_BYTES
        store_fp16(out, o, d)
        idscale = F32(1.0) / d if d != F32(0.0) else F32(0.0)
        _store_codes(x, base, idscale, out, o + 2)


@njit(**JIT)
def _quantize_row_xs(x, qw, out):
    w = np.empty(QK, dtype=np.float32)
    ids = np.empty(NTRIAL, dtype=np.float32)
    sqx = np.empty(NTRIAL, dtype=np.float32)
    sq2 = np.empty(NTRIAL, dtype=np.float32)
    scales = np.empty(QK_K // QK, dtype=np.float32)
    for sb in range(x.shape[0] // QK_K):
        sbase = sb * QK_K
        sigma2 = _sigma2(x, sbase, QK_K) if qw.shape[0] != 0 else F32(0.0)
        amax_scale = F32(0.0)
        max_scale = F32(0.0)
        for ib in range(QK_K // QK):
            base = sbase + ib * QK
            element_weights(x, base, QK, qw, sigma2, w)
            s = _block_scale(x, base, w, ids, sqx, sq2)
            scales[ib] = s
            if np.abs(s) > amax_scale:
                amax_scale = np.abs(s)
                max_scale = s
        o = sb * XS_BLOCK_BYTES
        d = -max_scale / F32(32.0)
        store_fp16(out, o, d)
        idscale = F32(1.0) / d if d != F32(0.0) else F32(0.0)
        scales_h = 0
        for ib in range(QK_K // QK):
            l = min(31, max(-32, nearest_int(idscale * scales[ib])))
            dl = d * F32(l)
            idl = F32(1.0) / dl if dl != F32(0.0) else F32(0.0)
            _store_codes(x, sbase + ib * QK, idl, out, o + 8 + 16 * ib)
            ls = l + 32
            if ib % 2 == 0:
                out[o + 4 + ib // 2] = np.uint8(ls & 0xF)
            else:
                out[o + 4 + ib // 2] |= np.uint8((ls & 0xF) << 4)
            scales_h |= (ls >> 4) << (2 * ib)
        store_u16(out, o + 2, scales_h)


@quantizer("IQ4_NL")
@njit(**JIT_PARALLEL)
def quantize_iq4_nl(x, qw):
    """IQ4_NL rows as ggml_quantize_chunk writes them (ntry = 7, with or without imatrix)."""
    return quantize_rows(x, qw, _quantize_row_nl, QK, NL_BLOCK_BYTES)


@quantizer("IQ4_XS")
@njit(**JIT_PARALLEL)
def quantize_iq4_xs(x, qw):
    """IQ4_XS rows as ggml_quantize_chunk writes them (with or without imatrix)."""
    return quantize_rows(x, qw, _quantize_row_xs, QK_K, XS_BLOCK_BYTES)


@njit(**JIT)
def _dequantize_row_nl(q, y):
    for b in range(y.shape[0] // QK):
        o = b * NL_BLOCK_BYTES
        decode_nibbles(q, o + 2, 16, KVALUES, load_fp16(q, o), y, b * QK)


@njit(**JIT)
def _dequantize_row_xs(q, y):
    for sb in range(y.shape[0] // QK_K):
        o = sb * XS_BLOCK_BYTES
        d = load_fp16(q, o)
        scales_h = load_u16(q, o + 2)
        for ib in range(QK_K // QK):
            lo = (np.int64(q[o + 4 + ib // 2]) >> (4 * (ib % 2))) & 0xF
            ls = lo | (((scales_h >> (2 * ib)) & 3) << 4)
            dl = d * F32(ls - 32)
            decode_nibbles(q, o + 8 + 16 * ib, 16, KVALUES, dl, y, sb * QK_K + ib * QK)


@dequantizer("IQ4_NL")
@njit(**JIT_PARALLEL)
def dequantize_iq4_nl(q, n_per_row):
    """IQ4_NL -> float32: d·T[code]."""
    return dequantize_rows(q, n_per_row, _dequantize_row_nl)


@dequantizer("IQ4_XS")
@njit(**JIT_PARALLEL)
def dequantize_iq4_xs(q, n_per_row):
    """IQ4_XS -> float32: (d·(ls − 32))·T[code]."""
    return dequantize_rows(q, n_per_row, _dequantize_row_xs)
