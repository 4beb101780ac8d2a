"""IQ1_M: 16-blocks of the iq1s grid, a delta sign per 8-group, 3-bit scales, split super-scale.

Layout (56 bytes per 256): qs[32] low index bytes, qh[16] (per 16-block: low nibble = 3 high
index bits of the first 8-group + bit 3 its delta sign, high nibble likewise for the second),
then four uint16 scale words: bits 0..11 hold four 3-bit block scales, bits 12..15 of the four
words together form the fp16 super-scale, which is refit by weighted least squares over the
superblock with the quantized scales and stored times ggml's fudge factor 1.1125.
Shared pieces (sorting, weights, grid look-up) are in :mod:`.iq1` and :mod:`._iq1_grids`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K
from ._common import F32, JIT, JIT_PARALLEL, element_weights, fp32_to_fp16_bits, nearest_int, store_u16
from ._iq1_grids import FLT_MAX, LEVELS, grid_index, group_sums, iq1_tables
from ._rows import quantize_rows_with
from ._simd import first_better
from .iq1 import IQ1M_BYTES, abs_max, assign_levels, stable_order, superblock_sigma2
from .registry import quantizer

EPS_IQ1_M = F32(1e-7)
# qh delta-sign bits of shift codes 0: (+,+), 1: (+,-), 2: (-,+), 3: (-,-).
SIGN_MASKS = np.array([0x00, 0x80, 0x08, 0x88], dtype=np.int64)


@njit(inline="always", **JIT)
def _level_row(shift, k):
    """LEVELS row (0: +delta, 1: -delta) of 8-group ``k`` under shift code ``shift``."""
    return (shift >> 1) if k == 0 else (shift & 1)


@njit(inline="always", **JIT)
def _prefix(x, xo, weight, idx, px, pw):
    """Prefix sums of w*x and w over the sorted values, kept apart per 8-half of the block."""
    for h in range(2):
        px[h, 0] = F32(0.0)
        pw[h, 0] = F32(0.0)
    for j in range(16):
        i = idx[j]
        h = 0 if i < 8 else 1
        px[h, j + 1] = px[h, j] + weight[i] * x[xo + i]
        px[1 - h, j + 1] = px[1 - h, j]
        pw[h, j + 1] = pw[h, j] + weight[i]
        pw[1 - h, j + 1] = pw[1 - h, j]


@njit(inline="always", **JIT)
def _half_terms(px, pw, terms):
    """Per half h and split point i the products ggml forms in its search loop.

    ``terms[h, 0..3, i]`` = pw*cp1, pw*cp2, pw*cm1, pw*cm2 with cp1 = p0^2 - p1^2, cp2 = p1^2 - p2^2
    (and the same for the minus levels).
    """
    p, m = LEVELS[0], LEVELS[1]
    cp1 = p[0] * p[0] - p[1] * p[1]
    cp2 = p[1] * p[1] - p[2] * p[2]
    cm1 = m[0] * m[0] - m[1] * m[1]
    cm2 = m[1] * m[1] - m[2] * m[2]
    for h in range(2):
        for i in range(17):
            terms[h, 0, i] = pw[h, i] * cp1
            terms[h, 1, i] = pw[h, i] * cp2
            terms[h, 2, i] = pw[h, i] * cm1
            terms[h, 3, i] = pw[h, i] * cm2


N_CAND = 4 * 17  # candidates (i2, k) of one i1, at 4*i2 + k


@njit(inline="always", **JIT)
def _search(x, xo, weight, idx, px, pw, terms, cand):
    """Exhaustive split search of one 16-block with a delta sign per 8-half.

    Returns (i1, i2, k, scale), k = 2*(first half negative) + (second half negative). As in
    ggml, a half's sums use the closed form v2*T - P(i1) - P(i2) (the levels are one apart).
    The sums of every candidate of one i1 are formed first (``cand[0]`` / ``cand[1]``, whose
    16 entries past the end stay 0), then scanned 16 at a time with :func:`first_better`,
    which makes ggml's one-by-one choices.
    """
    _prefix(x, xo, weight, idx, px, pw)
    _half_terms(px, pw, terms)
    p2, m2 = LEVELS[0, 2], LEVELS[1, 2]
    txp0, txm0 = px[0, 16] * p2, px[0, 16] * m2
    txp1, txm1 = px[1, 16] * p2, px[1, 16] * m2
    twp0, twm0 = pw[0, 16] * p2 * p2, pw[0, 16] * m2 * m2
    twp1, twm1 = pw[1, 16] * p2 * p2, pw[1, 16] * m2 * m2
    cqx, cq2 = cand[0], cand[1]
    best = -FLT_MAX
    scale = F32(0.0)
    b1 = -1
    b2 = -1
    bk = -1
    for i1 in range(17):
        for i2 in range(i1, 17):
            sx = px[0, i1] + px[0, i2]
            qxp0, qxm0 = txp0 - sx, txm0 - sx
            q2p0 = twp0 + terms[0, 0, i1] + terms[0, 1, i2]
            q2m0 = twm0 + terms[0, 2, i1] + terms[0, 3, i2]
            sx = px[1, i1] + px[1, i2]
            qxp1, qxm1 = txp1 - sx, txm1 - sx
            q2p1 = twp1 + terms[1, 0, i1] + terms[1, 1, i2]
            q2m1 = twm1 + terms[1, 2, i1] + terms[1, 3, i2]
            t = 4 * i2
            cqx[t], cq2[t] = qxp0 + qxp1, q2p0 + q2p1
            cqx[t + 1], cq2[t + 1] = qxp0 + qxm1, q2p0 + q2m1
            cqx[t + 2], cq2[t + 2] = qxm0 + qxp1, q2m0 + q2p1
            cqx[t + 3], cq2[t + 3] = qxm0 + qxm1, q2m0 + q2m1
        pos = 4 * i1
        while pos < N_CAND:
            j = first_better(cqx, cq2, pos, best, 16)
            if j == 16:
                pos += 16
                continue
            t = pos + j
            scale = cqx[t] / cq2[t]
            best = scale * cqx[t]
            b1, b2, bk = i1, t >> 2, t & 3
            pos = t + 1
    return b1, b2, bk, scale


@njit(inline="always", **JIT)
def _block(x, xo, weight, scratch, L, idx, tables, out, o, ib):
    """Quantize one 16-block: writes qs/qh, returns (scale, shift code); (0, 0) when skipped."""
    grid = tables[0]
    px, pw, terms, err, cand = scratch
    if abs_max(x, xo, 16) < EPS_IQ1_M:
        return F32(0.0), 0
    stable_order(x, xo, 16, idx)
    i1, i2, shift, scale = _search(x, xo, weight, idx, px, pw, terms, cand)
    if i1 < 0:
        return F32(0.0), 0
    assign_levels(idx, 16, i1, i2, L)
    if scale < 0:
        for j in range(16):
            L[j] = 2 - L[j]
        scale = -scale
        shift = 3 - shift  # both delta signs flip
    g0, on0 = grid_index(L, 0, tables, x, xo, weight, scale, LEVELS[_level_row(shift, 0)], err)
    g1, on1 = grid_index(L, 8, tables, x, xo, weight, scale, LEVELS[_level_row(shift, 1)], err)
    if not (on0 and on1):
        sumqx = F32(0.0)
        sumq2 = F32(0.0)
        for k in range(2):
            lv = LEVELS[_level_row(shift, k)]
            g = g0 if k == 0 else g1
            sumqx, sumq2 = group_sums(grid, g, lv, F32(1.0), x, xo + 8 * k, weight, 8 * k, sumqx, sumq2)
        if sumqx > 0 and sumq2 > 0:
            scale = sumqx / sumq2
    out[o + 2 * ib] = np.uint8(g0 & 255)
    out[o + 2 * ib + 1] = np.uint8(g1 & 255)
    out[o + 32 + ib] = np.uint8((g0 >> 8) | ((g1 >> 8) << 4))
    return scale, shift


@njit(**JIT)
def _super_scale(x, base, weight, scales, shifts, grid, out, o):
    """Pack the 3-bit scales and delta signs, then refit and store the fp16 super-scale."""
    max_scale = F32(0.0)
    for ib in range(16):
        max_scale = max(max_scale, scales[ib])
    if max_scale == 0:
        return
    d = max_scale / F32(15.0)
    inv = F32(1.0) / d
    sc = np.zeros(4, dtype=np.int64)
    sumqx = F32(0.0)
    sumq2 = F32(0.0)
    for ib in range(16):
        lvl = min(7, max(0, nearest_int(F32(0.5) * (inv * scales[ib] - F32(1.0)))))
        sc[ib // 4] |= lvl << (3 * (ib % 4))
        qh = np.int64(out[o + 32 + ib]) | SIGN_MASKS[shifts[ib]]
        out[o + 32 + ib] = np.uint8(qh)
        mult = F32(2 * lvl + 1)
        for k in range(2):
            lv = LEVELS[_level_row(shifts[ib], k)]
            g = np.int64(out[o + 2 * ib + k]) | (((qh >> (4 * k)) & 7) << 8)
            e = 16 * ib + 8 * k
            sumqx, sumq2 = group_sums(grid, g, lv, mult, x, base + e, weight, e, sumqx, sumq2)
    if sumq2 > 0:
        d = sumqx / sumq2
    s = np.int64(fp32_to_fp16_bits(d * F32(1.1125)))  # ggml's fudge factor
    sc[0] |= (s & 0x000F) << 12
    sc[1] |= (s & 0x00F0) << 8
    sc[2] |= (s & 0x0F00) << 4
    sc[3] |= s & 0xF000
    for t in range(4):
        store_u16(out, o + 48 + 2 * t, sc[t])


@njit(**JIT)
def _row(x, qw, out, tables):
    scratch = (
        np.empty((2, 17), dtype=np.float32),
        np.empty((2, 17), dtype=np.float32),
        np.empty((2, 4, 17), dtype=np.float32),
        np.empty((3, 8), dtype=np.float32),
        np.zeros((2, N_CAND + 16), dtype=np.float32),
    )
    weight = np.empty(QK_K, dtype=np.float32)
    idx = np.empty(16, dtype=np.int64)
    L = np.empty(16, dtype=np.int8)
    scales = np.empty(16, dtype=np.float32)
    shifts = np.empty(16, dtype=np.int64)
    for ibl in range(x.shape[0] // QK_K):
        o = ibl * IQ1M_BYTES
        out[o : o + IQ1M_BYTES] = 0
        base = ibl * QK_K
        element_weights(x, base, QK_K, qw, superblock_sigma2(x, base), weight)
        for ib in range(16):
            wb = weight[16 * ib : 16 * ib + 16]
            scales[ib], shifts[ib] = _block(x, base + 16 * ib, wb, scratch, L, idx, tables, out, o, ib)
        _super_scale(x, base, weight, scales, shifts, tables[0], out, o)
    return False  # never fails (the driver's flag)


@njit(**JIT_PARALLEL)
def _quantize_iq1_m(x, qw, tables):
    return quantize_rows_with(x, qw, _row, QK_K, IQ1M_BYTES, tables)


@quantizer("IQ1_M")
def quantize_iq1_m(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ1_M rows, byte-identical to ggml's quantize_iq1_m (imatrix weights, or x^2 without)."""
    return _quantize_iq1_m(x, qw, iq1_tables())[0]
