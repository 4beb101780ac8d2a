"""IQ3_XXS and IQ3_S: 256-weight superblocks of 32-blocks, four magnitudes per grid point.

Both follow ggml's ``quantize_row_iq3_xxs_impl`` / ``quantize_row_iq3_s_impl``: per 32-block a
scale search over 31 (XXS) or 19 (S) candidate inverse scales, each group of four 3-bit codes
snapped onto the grid (an off-grid group takes its best neighbour), then a final requantization
and refit; the superblock keeps one fp16 scale (with ggml's fudge factor) and 4-bit sub-scales.
The lattice tables come from ``_iq3_grids`` and are passed to the kernels as arrays.
The hot helpers are inlined at numba level (``inline="always"``): numba does not inline calls
between separately compiled functions, and here that alone nearly doubles the throughput.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, load_u32, nearest_int, store_fp16, store_u32, sum_squares
from ._iq3_grids import iq3_tables
from ._rows import checked_rows, dequantize_rows_with, quantize_rows_with
from .registry import dequantizer, quantizer

XXS_BYTES = QTYPES["IQ3_XXS"].type_size  # d, 64 grid indices, 8 words of 4x7 sign bits + 4-bit scale
S_BYTES = QTYPES["IQ3_S"].type_size  # d, qs[64], qh[8], signs[32], scales[4]
FLT_MAX = F32(3.4028234663852886e38)
SKIPPED = F32(-1.0)  # a block's scale is >= 0 (or NaN after a failed search): -1 marks a skipped block


@njit(inline="always", **JIT)
def _best_neighbour(neighbours, start, levels, codes, xval, waux, o, scale, L):
    """iq3_find_best_neighbour: the listed grid point of least weighted distance to xval."""
    best_d2 = FLT_MAX
    best = -1
    for j in range(1, np.int64(neighbours[start]) + 1):
        g = np.int64(neighbours[start + j])
        d2 = F32(0.0)
        for i in range(4):
            diff = scale * levels[g, i] - xval[o + i]
            d2 += waux[o + i] * diff * diff
        if d2 < best_d2:
            best_d2 = d2
            best = g
    if best >= 0:  # -1 only when every distance overflowed (ggml aborts then)
        for i in range(4):
            L[o + i] = codes[best, i]
    return best


@njit(inline="always", **JIT)
def _snap_group(xval, waux, o, inv, scale, L, levels, codes, kmap, neighbours):
    """Codes of one group of four at inverse scale ``inv``.

    Returns 1 when they lie on the grid, 0 when a neighbour replaced them, -1 when the
    neighbour search failed (ggml's GGML_ASSERT(grid_index >= 0)).
    """
    u = 0
    for i in range(4):
        l = nearest_int(F32(0.5) * (inv * xval[o + i] - F32(1.0)))
        l = min(7, max(0, l))
        L[o + i] = l
        u |= l << (3 * i)
    g = kmap[u]
    if g >= 0:
        return 1
    if _best_neighbour(neighbours, -g - 1, levels, codes, xval, waux, o, scale, L) < 0:
        return -1
    return 0


@njit(inline="always", **JIT)
def _weighted_sums(weight, xval, L):
    sumqx = F32(0.0)
    sumq2 = F32(0.0)
    for i in range(32):
        w = weight[i]
        q = F32(2 * L[i] + 1)
        sumqx += w * xval[i] * q
        sumq2 += w * q * q
    return sumqx, sumq2


@njit(inline="always", **JIT)
def _search_block(
    xval,
    weight,
    waux,
    vmax,
    nstep,
    all_on_grid_start,
    requant_all,
    L,
    Laux,
    on_grid,
    on_grid_aux,
    levels,
    codes,
    kmap,
    neighbours,
):
    """Scale search of one 32-block (codes left in L); returns (scale, search failed)."""
    failed = False
    best = F32(0.0)
    scale = vmax / F32(15.0)
    L[:] = 0
    on_grid[:] = all_on_grid_start
    for step in range(-nstep, nstep + 1):
        inv = (F32(15.0) + F32(step) * F32(0.2)) / vmax
        this_scale = F32(1.0) / inv
        for k in range(8):
            found = _snap_group(xval, waux, 4 * k, inv, this_scale, Laux, levels, codes, kmap, neighbours)
            on_grid_aux[k] = found == 1
            failed |= found < 0
        sumqx, sumq2 = _weighted_sums(weight, xval, Laux)
        if sumq2 > F32(0.0) and sumqx * sumqx > best * sumq2:
            scale = sumqx / sumq2
            best = scale * sumqx
            for i in range(32):
                L[i] = Laux[i]
            for k in range(8):
                on_grid[k] = on_grid_aux[k]
    if not on_grid.all() and scale > F32(0.0):
        inv = F32(1.0) / scale
        for k in range(8):
            if requant_all or not on_grid[k]:
                found = _snap_group(xval, waux, 4 * k, inv, scale, L, levels, codes, kmap, neighbours)
                failed |= found < 0
        sumqx, sumq2 = _weighted_sums(weight, xval, L)
        if sumq2 > F32(0.0):
            scale = sumqx / sumq2
    return scale, failed


@njit(inline="always", **JIT)
def _prepare_block(x, base, qw, sigma2, weight, waux, xval, signs):
    """Element weights (imatrix form or x^2), their square roots, |x| and the sign bytes."""
    signs[:] = 0
    for i in range(32):
        xi = x[base + i]
        if qw.shape[0] > 0:
            weight[i] = qw[base + i] * np.sqrt(sigma2 + xi * xi)
        else:
            weight[i] = xi * xi
        waux[i] = np.sqrt(weight[i])
        if xi >= F32(0.0):
            xval[i] = xi
        else:
            xval[i] = -xi
            signs[i // 8] |= 1 << (i % 8)
    return signs


@njit(inline="always", **JIT)
def _grid_index(L, k, kmap):
    u = 0
    for i in range(4):
        u |= np.int64(L[4 * k + i]) << (3 * i)
    return max(np.int64(kmap[u]), 0)  # off grid only after a failed search (reported)


@njit(inline="always", **JIT)
def _make_parity_even(x, base, weight, xval, signs):
    """IQ3_XXS stores 7 signs per 8: an odd group flips its element of least w*x^2."""
    for k in range(4):
        nneg = 0
        for i in range(8):
            nneg += (signs[k] >> i) & 1
        if nneg % 2 == 1:
            j = 8 * k
            vmin = weight[j] * x[base + j] * x[base + j]
            imin = 0
            for i in range(1, 8):
                j = 8 * k + i
                v = weight[j] * x[base + j] * x[base + j]
                if v < vmin:
                    vmin = v
                    imin = i
            xval[8 * k + imin] = -xval[8 * k + imin]
            signs[k] ^= 1 << imin
        signs[k] &= 127


@njit(inline="always", **JIT)
def _sub_scale(inv_d, scale):
    return min(15, max(0, nearest_int(F32(0.5) * (inv_d * scale - F32(1.0)))))


@njit(**JIT)
def _scratch():
    """Per-row work arrays: weight, waux, xval, L, Laux, on_grid, on_grid_aux, scales, signs."""
    f32, i64, b = np.float32, np.int64, np.bool_
    return (
        np.empty(32, dtype=f32),
        np.empty(32, dtype=f32),
        np.empty(32, dtype=f32),
        np.zeros(32, dtype=i64),
        np.zeros(32, dtype=i64),
        np.zeros(8, dtype=b),
        np.zeros(8, dtype=b),
        np.zeros(8, dtype=f32),
        np.zeros(4, dtype=i64),
    )


@njit(inline="always", **JIT)
def _block(x, base, qw, sigma2, xxs, sc, tables):
    """Scale of one 32-block (codes in ``sc[3]``, signs in ``sc[8]``), or SKIPPED.

    Returns ``(scale, failed)``. IQ3_XXS keeps 7 signs per 8 (parity), skips blocks below
    1e-8 and searches 31 scales; IQ3_S skips all-zero blocks and searches 19.
    """
    weight, waux, xval, L, Laux, on_grid, on_grid_aux, _scales, signs = sc
    levels, codes, kmap, neighbours = tables
    _prepare_block(x, base, qw, sigma2, weight, waux, xval, signs)
    if xxs:
        _make_parity_even(x, base, weight, xval, signs)
    vmax = xval[0]
    for i in range(1, 32):
        vmax = max(vmax, xval[i])
    if (vmax < F32(1e-8)) if xxs else (vmax == F32(0.0)):
        return SKIPPED, False
    scale, failed = _search_block(
        xval,
        weight,
        waux,
        vmax,
        15 if xxs else 9,
        xxs,
        not xxs,
        L,
        Laux,
        on_grid,
        on_grid_aux,
        levels,
        codes,
        kmap,
        neighbours,
    )
    if scale < F32(0.0):  # cannot happen in practice; ggml flips the signs
        scale = -scale
        for k in range(4):
            signs[k] = ~signs[k] & (127 if xxs else 255)
    return scale, failed


@njit(**JIT)
def _quantize_row_xxs(x, qw, out, tables):
    sc = _scratch()
    L, scales, signs = sc[3], sc[7], sc[8]
    kmap = tables[2]
    words = np.zeros(8, dtype=np.int64)
    failed = False
    for ibl in range(x.shape[0] // QK_K):
        o = ibl * XXS_BYTES
        out[o : o + XXS_BYTES] = 0
        sigma2 = F32(2.0) * sum_squares(x, ibl * QK_K, QK_K) / F32(QK_K)
        max_scale = F32(0.0)
        for ib in range(8):
            scale, bad = _block(x, ibl * QK_K + 32 * ib, qw, sigma2, True, sc, tables)
            failed |= bad
            scales[ib] = F32(0.0)
            words[ib] = 0
            if scale == SKIPPED:
                continue
            scales[ib] = scale
            for k in range(8):
                out[o + 2 + 8 * ib + k] = np.uint8(_grid_index(L, k, kmap))
            words[ib] = signs[0] | (signs[1] << 7) | (signs[2] << 14) | (signs[3] << 21)
            max_scale = max(max_scale, scale)
        if max_scale == F32(0.0):
            out[o : o + XXS_BYTES] = 0
            continue
        d = max_scale / F32(31.0)
        store_fp16(out, o, d * F32(1.0125))
        inv_d = F32(1.0) / d
        for ib in range(8):
            store_u32(out, o + 66 + 4 * ib, words[ib] | (_sub_scale(inv_d, scales[ib]) << 28))
    return failed


@njit(**JIT)
def _quantize_row_s(x, qw, out, tables):
    sc = _scratch()
    L, scales, signs = sc[3], sc[7], sc[8]
    kmap = tables[2]
    failed = False
    for ibl in range(x.shape[0] // QK_K):
        o = ibl * S_BYTES
        out[o : o + S_BYTES] = 0
        qs = o + 2
        signs_at = o + 74
        sigma2 = F32(2.0) * sum_squares(x, ibl * QK_K, QK_K) / F32(QK_K)
        max_scale = F32(0.0)
        for ib in range(8):
            scale, bad = _block(x, ibl * QK_K + 32 * ib, qw, sigma2, False, sc, tables)
            failed |= bad
            scales[ib] = F32(0.0)
            if scale == SKIPPED:
                # ggml skips this block without advancing its qs/signs pointers: later blocks
                # of the superblock are written 8/4 bytes early (qh and scales are indexed).
                continue
            for k in range(8):
                g = _grid_index(L, k, kmap)
                out[qs + k] = np.uint8(g & 255)
                out[o + 66 + ib] |= np.uint8((g >> 8) << k)
            qs += 8
            for k in range(4):
                out[signs_at + k] = np.uint8(signs[k])
            signs_at += 4
            scales[ib] = scale
            max_scale = max(max_scale, scale)
        if max_scale == F32(0.0):
            continue
        d = max_scale / F32(31.0)
        store_fp16(out, o, d * F32(1.033))
        inv_d = F32(1.0) / d
        for ib in range(0, 8, 2):
            out[o + 106 + ib // 2] = np.uint8(_sub_scale(inv_d, scales[ib]) | (_sub_scale(inv_d, scales[ib + 1]) << 4))
    return failed


@njit(**JIT_PARALLEL)
def _quantize_iq3_xxs(x, qw, tables):
    return quantize_rows_with(x, qw, _quantize_row_xxs, QK_K, XXS_BYTES, tables)


@njit(**JIT_PARALLEL)
def _quantize_iq3_s(x, qw, tables):
    return quantize_rows_with(x, qw, _quantize_row_s, QK_K, S_BYTES, tables)


@quantizer("IQ3_XXS")
def quantize_iq3_xxs(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ3_XXS rows, bytes of ggml's quantize_iq3_xxs (imatrix optional)."""
    t = iq3_tables(256)
    return checked_rows("IQ3_XXS", *_quantize_iq3_xxs(x, qw, (t.levels, t.codes, t.kmap, t.neighbours)))


@quantizer("IQ3_S")
def quantize_iq3_s(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ3_S rows, bytes of ggml's quantize_iq3_s (imatrix optional)."""
    t = iq3_tables(512)
    return checked_rows("IQ3_S", *_quantize_iq3_s(x, qw, (t.levels, t.codes, t.kmap, t.neighbours)))


def _sign_parity_table() -> np.ndarray:
    """ksigns_iq2xs: the 7 stored signs plus the parity bit that makes the count even."""
    i = np.arange(128, dtype=np.uint8)
    parity = np.unpackbits(i[:, None], axis=1).sum(axis=1) & 1
    return (i | (parity << 7)).astype(np.uint8)


KSIGNS = _sign_parity_table()


@njit(**JIT)
def _dequantize_row_xxs(q, y, tables):
    values, ksigns = tables
    for ibl in range(y.shape[0] // QK_K):
        o = ibl * XXS_BYTES
        d = load_fp16(q, o)
        for ib in range(8):
            word = load_u32(q, o + 66 + 4 * ib)
            db = d * (F32(0.5) + F32(word >> 28)) * F32(0.5)
            for l in range(4):
                signs = ksigns[(word >> (7 * l)) & 127]
                for j in range(8):
                    g = q[o + 2 + 8 * ib + 2 * l + j // 4]
                    v = db * values[g, j % 4]
                    y[ibl * QK_K + 32 * ib + 8 * l + j] = -v if (signs >> j) & 1 else v


@njit(**JIT)
def _dequantize_row_s(q, y, tables):
    values = tables[0]
    for ibl in range(y.shape[0] // QK_K):
        o = ibl * S_BYTES
        d = load_fp16(q, o)
        for ib in range(8):
            s = (np.int64(q[o + 106 + ib // 2]) >> (4 * (ib % 2))) & 15
            db = d * F32(1 + 2 * s)
            qh = np.int64(q[o + 66 + ib])
            for k in range(8):
                g = np.int64(q[o + 2 + 8 * ib + k]) | (((qh >> k) & 1) << 8)
                signs = np.int64(q[o + 74 + 4 * ib + k // 2]) >> (4 * (k % 2))
                for i in range(4):
                    v = db * values[g, i]
                    y[ibl * QK_K + 32 * ib + 4 * k + i] = -v if (signs >> i) & 1 else v


@njit(**JIT_PARALLEL)
def _dequantize_iq3_xxs(q, n_per_row, tables):
    return dequantize_rows_with(q, n_per_row, _dequantize_row_xxs, tables)


@njit(**JIT_PARALLEL)
def _dequantize_iq3_s(q, n_per_row, tables):
    return dequantize_rows_with(q, n_per_row, _dequantize_row_s, tables)


@dequantizer("IQ3_XXS")
def dequantize_iq3_xxs(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """Decode IQ3_XXS rows like gguf-py: d*(0.5+s)*0.5 * grid * sign."""
    return _dequantize_iq3_xxs(q, n_per_row, (iq3_tables(256).values, KSIGNS))


@dequantizer("IQ3_S")
def dequantize_iq3_s(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """Decode IQ3_S rows like gguf-py: d*(1+2s) * grid * sign."""
    return _dequantize_iq3_s(q, n_per_row, (iq3_tables(512).values,))
