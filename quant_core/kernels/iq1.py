"""IQ1_S (and the IQ1 family's shared pieces): ternary 8-groups from the 2048-point iq1s grid.

Both IQ1 types split each block of weights exactly (every pair of split points over the
sorted values) into the three levels {-1, 0, +1} + delta, snap each 8-group to the grid (or
to its best neighbour) and store 3-bit block scales. IQ1_S works on 32-blocks with one delta
sign each and an fp16 super-scale d: value = d*(2s+1)*(grid + delta). IQ1_M is in
:mod:`.iq1_m`; both dequantizers are here.

The grid, lookup map and neighbour lists come from :mod:`._iq1_grids` and reach the kernels
as array arguments; the registered entry points are thin Python wrappers that fetch them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import (
    F32,
    JIT,
    JIT_PARALLEL,
    element_weights,
    fp16_bits_to_fp32,
    load_fp16,
    load_u16,
    nearest_int,
    store_fp16,
    store_u16,
    sum_squares,
)
from ._iq1_grids import FLT_MAX, LEVELS, grid_index, group_sums, iq1_grid, iq1_tables
from ._rows import dequantize_rows_with, quantize_rows_with
from .registry import dequantizer, quantizer

IQ1S_BYTES = QTYPES["IQ1_S"].type_size
IQ1M_BYTES = QTYPES["IQ1_M"].type_size
EPS_IQ1_S = F32(1e-12)


@njit(inline="always", **JIT)
def stable_order(x, start, n, idx):
    """Indices 0..n-1 sorted by ``x[start + i]`` ascending, ties in index order.

    ggml sorts with qsort and a value-only comparator; glibc's qsort is a stable merge sort
    at these sizes, so equal values keep their original order. Element i goes to its rank:
    the count of elements before it in that order (no data-dependent branches).
    """
    for i in range(n):
        v = x[start + i]
        rank = 0
        for j in range(n):
            u = x[start + j]
            rank += (u < v) | ((u == v) & (j < i))
        idx[rank] = i


@njit(inline="always", **JIT)
def superblock_sigma2(x, base):
    """2 * sum(x^2) / 256 over the superblock, summed sequentially as in C."""
    return F32(2.0) * sum_squares(x, base, QK_K) / F32(QK_K)


@njit(inline="always", **JIT)
def abs_max(x, xo, n):
    """Largest |x| of the block."""
    m = np.abs(x[xo])
    for i in range(1, n):
        m = max(m, np.abs(x[xo + i]))
    return m


@njit(inline="always", **JIT)
def assign_levels(idx, n, i1, i2, L):
    """Codes 0 / 1 / 2 for the sorted positions below i1 / in [i1, i2) / from i2 on."""
    for j in range(n):
        L[idx[j]] = 0 if j < i1 else (1 if j < i2 else 2)


@njit(inline="always", **JIT)
def _iq1s_prefix(x, xo, weight, idx, sumx, sumw, tails):
    """Prefix sums over the sorted values, and the per-i2 tail terms of the split search.

    ``tails[0..3, i2]`` = c*p2, cw*p2*p2, c*m2, cw*m2*m2 with c, cw the sums from i2 on: the
    same float32 products ggml forms inside its double loop, formed once per i2.
    """
    sumx[0] = F32(0.0)
    sumw[0] = F32(0.0)
    for j in range(32):
        i = idx[j]
        sumx[j + 1] = sumx[j] + weight[i] * x[xo + i]
        sumw[j + 1] = sumw[j] + weight[i]
    p2, m2 = LEVELS[0, 2], LEVELS[1, 2]
    for i2 in range(33):
        c = sumx[32] - sumx[i2]
        cw = sumw[32] - sumw[i2]
        tails[0, i2] = c * p2
        tails[1, i2] = cw * p2 * p2
        tails[2, i2] = c * m2
        tails[3, i2] = cw * m2 * m2


@njit(inline="always", **JIT)
def _iq1s_search(x, xo, weight, idx, sumx, sumw, tails):
    """Exhaustive split search of one 32-block; returns (i1, i2, shift, scale).

    Middle-level terms are shared by both shifts: m1 = -p1 = -0.125, so b*m1 == -(b*p1) and
    bw*m1*m1 == bw*p1*p1 exactly.
    """
    _iq1s_prefix(x, xo, weight, idx, sumx, sumw, tails)
    p0, p1, m0 = LEVELS[0, 0], LEVELS[0, 1], LEVELS[1, 0]
    best = -FLT_MAX
    scale = F32(0.0)
    b1 = -1
    b2 = -1
    bshift = 0
    for i1 in range(33):
        a = sumx[i1] - sumx[0]
        aw = sumw[i1] - sumw[0]
        ap, am = a * p0, a * m0
        awp, awm = aw * p0 * p0, aw * m0 * m0
        for i2 in range(i1, 33):
            bp = (sumx[i2] - sumx[i1]) * p1
            bwq = (sumw[i2] - sumw[i1]) * p1 * p1
            sumqx = ap + bp + tails[0, i2]
            sumq2 = awp + bwq + tails[1, i2]
            if sumq2 > 0 and sumqx * sumqx > best * sumq2:
                scale = sumqx / sumq2
                best = scale * sumqx
                b1, b2, bshift = i1, i2, 1
            sumqx = am - bp + tails[2, i2]
            sumq2 = awm + bwq + tails[3, i2]
            if sumq2 > 0 and sumqx * sumqx > best * sumq2:
                scale = sumqx / sumq2
                best = scale * sumqx
                b1, b2, bshift = i1, i2, -1
    return b1, b2, bshift, scale


@njit(inline="always", **JIT)
def _iq1s_block(x, xo, weight, scratch, L, idx, tables, out, o, ib):
    """Quantize one 32-block: writes qs, returns (qh low bits, scale, shift)."""
    grid = tables[0]
    sumx, sumw, tails, err = scratch
    if abs_max(x, xo, 32) < EPS_IQ1_S:
        return 0, F32(0.0), 1
    stable_order(x, xo, 32, idx)
    i1, i2, shift, scale = _iq1s_search(x, xo, weight, idx, sumx, sumw, tails)
    if i1 < 0:
        return 0, F32(0.0), 1
    assign_levels(idx, 32, i1, i2, L)
    if scale < 0:
        for j in range(32):
            L[j] = 2 - L[j]
        scale = -scale
        shift = -shift
    lv = LEVELS[0] if shift == 1 else LEVELS[1]
    h = 0
    all_on_grid = True
    for k in range(4):
        g, on = grid_index(L, 8 * k, tables, x, xo, weight, scale, lv, err)
        all_on_grid = all_on_grid and on
        out[o + 2 + 4 * ib + k] = np.uint8(g & 255)
        h |= (g >> 8) << (3 * k)
    if not all_on_grid:
        sumqx = F32(0.0)
        sumq2 = F32(0.0)
        for k in range(4):
            g = np.int64(out[o + 2 + 4 * ib + k]) | (((h >> (3 * k)) & 7) << 8)
            sumqx, sumq2 = group_sums(grid, g, lv, F32(1.0), x, xo + 8 * k, weight, 8 * k, sumqx, sumq2)
        if sumqx > 0 and sumq2 > 0:
            scale = sumqx / sumq2
    return h, scale, shift


@njit(**JIT)
def _iq1s_row(x, qw, out, tables):
    scratch = (
        np.empty(33, dtype=np.float32),
        np.empty(33, dtype=np.float32),
        np.empty((4, 33), dtype=np.float32),
        np.empty((3, 8), dtype=np.float32),
    )
    weight = np.empty(32, dtype=np.float32)
    idx = np.empty(32, dtype=np.int64)
    L = np.empty(32, dtype=np.int8)
    scales = np.empty(8, dtype=np.float32)
    shifts = np.empty(8, dtype=np.int64)
    qh = np.empty(8, dtype=np.int64)
    for ibl in range(x.shape[0] // QK_K):
        o = ibl * IQ1S_BYTES
        out[o : o + IQ1S_BYTES] = 0
        base = ibl * QK_K
        sigma2 = superblock_sigma2(x, base)
        max_scale = F32(0.0)
        for ib in range(8):
            xo = base + 32 * ib
            element_weights(x, xo, 32, qw, sigma2, weight)
            qh[ib], scales[ib], shifts[ib] = _iq1s_block(x, xo, weight, scratch, L, idx, tables, out, o, ib)
            max_scale = max(max_scale, scales[ib])
        if max_scale != 0:
            d = max_scale / F32(15.0)
            store_fp16(out, o, d * F32(1.125))  # ggml's fudge factor
            inv = F32(1.0) / d
            for ib in range(8):
                lvl = min(7, max(0, nearest_int(F32(0.5) * (inv * scales[ib] - F32(1.0)))))
                if shifts[ib] == -1:
                    lvl |= 8
                qh[ib] |= lvl << 12
        for ib in range(8):
            store_u16(out, o + 34 + 2 * ib, qh[ib])
    return False  # never fails (the driver's flag)


@njit(**JIT_PARALLEL)
def _quantize_iq1_s(x, qw, tables):
    return quantize_rows_with(x, qw, _iq1s_row, QK_K, IQ1S_BYTES, tables)


@quantizer("IQ1_S")
def quantize_iq1_s(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ1_S rows, byte-identical to ggml's quantize_iq1_s (the imatrix is required upstream)."""
    return _quantize_iq1_s(x, qw, iq1_tables())[0]


@njit(inline="always", **JIT)
def _dequant_group(grid, g, dl, delta, y, yo):
    for j in range(8):
        y[yo + j] = dl * (F32(grid[g, j] - 1) + delta)


@njit(**JIT)
def _dequantize_row_s(q, y, tables):
    grid = tables[0]
    for ibl in range(y.shape[0] // QK_K):
        o = ibl * IQ1S_BYTES
        d = load_fp16(q, o)
        for ib in range(8):
            qh = load_u16(q, o + 34 + 2 * ib)
            dl = d * F32(2 * ((qh >> 12) & 7) + 1)
            delta = -LEVELS[0, 1] if qh & 0x8000 else LEVELS[0, 1]
            for k in range(4):
                g = np.int64(q[o + 2 + 4 * ib + k]) | (((qh >> (3 * k)) & 7) << 8)
                _dequant_group(grid, g, dl, delta, y, ibl * QK_K + 32 * ib + 8 * k)


@njit(**JIT)
def _dequantize_row_m(q, y, tables):
    grid = tables[0]
    for ibl in range(y.shape[0] // QK_K):
        o = ibl * IQ1M_BYTES
        sc0, sc1 = load_u16(q, o + 48), load_u16(q, o + 50)
        sc2, sc3 = load_u16(q, o + 52), load_u16(q, o + 54)
        bits = (sc0 >> 12) | ((sc1 >> 8) & 0x00F0) | ((sc2 >> 4) & 0x0F00) | (sc3 & 0xF000)
        d = fp16_bits_to_fp32(bits)
        for ib in range(16):
            sc = load_u16(q, o + 48 + 2 * (ib // 4))
            dl = d * F32(2 * ((sc >> (3 * (ib % 4))) & 7) + 1)
            for k in range(2):
                h = np.int64(q[o + 32 + ib]) >> (4 * k)
                delta = -LEVELS[0, 1] if h & 8 else LEVELS[0, 1]
                g = np.int64(q[o + 2 * ib + k]) | ((h & 7) << 8)
                _dequant_group(grid, g, dl, delta, y, ibl * QK_K + 16 * ib + 8 * k)


@njit(**JIT_PARALLEL)
def _dequantize_iq1_s(q, n_per_row, tables):
    return dequantize_rows_with(q, n_per_row, _dequantize_row_s, tables)


@njit(**JIT_PARALLEL)
def _dequantize_iq1_m(q, n_per_row, tables):
    return dequantize_rows_with(q, n_per_row, _dequantize_row_m, tables)


@dequantizer("IQ1_S")
def dequantize_iq1_s(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """IQ1_S rows to float32, bit-identical to gguf-py: d*(2s+1)*(grid + delta)."""
    return _dequantize_iq1_s(q, n_per_row, (iq1_grid(),))


@dequantizer("IQ1_M")
def dequantize_iq1_m(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """IQ1_M rows to float32, bit-identical to gguf-py (super-scale from the scale nibbles)."""
    return _dequantize_iq1_m(q, n_per_row, (iq1_grid(),))
