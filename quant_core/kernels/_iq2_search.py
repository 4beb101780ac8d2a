"""The lattice search shared by IQ2_XXS, IQ2_XS and IQ2_S (numba helpers of ``iq2``).

One sub-block (32 or 16 elements, i.e. 4 or 2 groups of 8) at a time, as in ggml's
``quantize_row_iq2_*_impl``: weights, sign split, candidate scales, grid placement with the
neighbour fallback (``iq2_find_best_neighbour``) and the final least-squares refit. Work arrays
live in the tuple ``scratch`` allocates once per row; the grid tables arrive as ``tabs`` =
(slots, codes, kmap, neighbours) from ``_iq2_grids``. Everything called per sub-block is
inlined at numba level (``inline="always"``): a call passing arrays costs an atomic reference
count per array, which made IQ2_S twice slower than ggml before inlining.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K
from ._common import F32, JIT, nearest_int, sum_squares

FLT_MAX = F32(3.4028234663852886e38)


@njit(**JIT)
def scratch(n):
    """(weight, waux, xval, L, Laux, on_grid, on_aux, err, failed) for sub-blocks of n elements.

    ``failed[0]`` becomes 1 where ggml would abort (a GGML_ASSERT in the search).
    """
    f32, i64, b = np.float32, np.int64, np.bool_
    return (
        np.zeros(n, dtype=f32),
        np.zeros(n, dtype=f32),
        np.zeros(n, dtype=f32),
        np.zeros(n, dtype=i64),
        np.zeros(n, dtype=i64),
        np.ones(n // 8, dtype=b),
        np.ones(n // 8, dtype=b),
        np.zeros(24, dtype=f32),
        np.zeros(1, dtype=i64),
    )


@njit(**JIT)
def sigma2_of(x, base, twice):
    """Σx²/256 (IQ2_XXS/XS) or 2·Σx²/256 (IQ2_S) over the super-block, sequential as in C."""
    s = sum_squares(x, base, QK_K)
    if twice:
        s = F32(2.0) * s
    return s / F32(QK_K)


@njit(inline="always", **JIT)
def prepare(x, base, n, qw, sigma2, parity, signs, buf):
    """Weights, |x| and sign bits of the sub-block at ``base``; returns max |x| (after flips).

    Weights are qw·sqrt(σ² + x²) with an imatrix, else ¼σ² + x² (IQ2_S); waux = sqrt(weight).
    With ``parity`` each group keeps 7 sign bits and an odd count of negatives is made even by
    flipping the element of smallest weight·x² (its xval becomes negative).
    """
    weight, waux, xval = buf[0], buf[1], buf[2]
    for i in range(n):
        v = x[base + i]
        if qw.shape[0] == 0:
            weight[i] = F32(0.25) * sigma2 + v * v
        else:
            weight[i] = qw[base + i] * np.sqrt(sigma2 + v * v)
        waux[i] = np.sqrt(weight[i])
    for k in range(n // 8):
        s = 0
        for i in range(8 * k, 8 * k + 8):
            v = x[base + i]
            if v >= F32(0.0):
                xval[i] = v
            else:
                xval[i] = -v
                s |= 1 << (i - 8 * k)
        if parity and _popcount8(s) % 2 == 1:
            imin = 8 * k
            vmin = weight[imin] * x[base + imin] * x[base + imin]
            for i in range(8 * k + 1, 8 * k + 8):
                ax = weight[i] * x[base + i] * x[base + i]
                if ax < vmin:
                    vmin = ax
                    imin = i
            xval[imin] = -xval[imin]
            s ^= 1 << (imin - 8 * k)
        signs[k] = s & 127 if parity else s
    vmax = xval[0]
    for i in range(1, n):
        vmax = vmax if vmax > xval[i] else xval[i]
    return vmax


@njit(**JIT)
def _popcount8(s):
    c = 0
    for j in range(8):
        c += (s >> j) & 1
    return c


@njit(inline="always", **JIT)
def _place_group(waux, xval, err, failed, L, k, inv, scale, slots, codes, kmap, neighbours):
    """Codes of group k at inverse scale ``inv`` into L; off grid, the best neighbour at ``scale``.

    Returns True when the rounded point was on the grid. The neighbour error is
    Σ_i waux_i·(scale·q_i − x_i)² in index order, first minimum wins; its 24 possible terms
    (8 positions × 3 levels) are computed once, so every neighbour only adds 8 of them. When no
    error is below FLT_MAX (overflow, NaN) ggml asserts: ``failed[0]`` is set, L left off grid.
    """
    u = 0
    mult = 1
    for i in range(8 * k, 8 * k + 8):
        l = nearest_int(F32(0.5) * (inv * xval[i] - F32(1.0)))
        l = max(0, min(2, l))
        L[i] = l
        u += l * mult
        mult *= 3
    g = kmap[u]
    if g >= 0:
        return True
    for i in range(8):
        for l in range(3):
            diff = scale * F32(2 * l + 1) - xval[8 * k + i]
            err[3 * i + l] = waux[8 * k + i] * diff * diff
    start = -g - 1
    best_d2 = FLT_MAX
    for j in range(start + 1, start + 1 + neighbours[start]):
        c = neighbours[j]
        d2 = F32(0.0)
        for i in range(8):
            d2 += err[slots[c, i]]
        if d2 < best_d2:
            best_d2 = d2
            g = c
    if g < 0:
        failed[0] = 1
        return False
    for i in range(8):
        L[8 * k + i] = codes[g, i]
    return False


@njit(inline="always", **JIT)
def _fit(weight, xval, L, n):
    """(Σ w·x·q, Σ w·q²) with q = 2L+1, sequential."""
    sumqx = F32(0.0)
    sumq2 = F32(0.0)
    for i in range(n):
        q = F32(2 * L[i] + 1)
        sumqx += weight[i] * xval[i] * q
        sumq2 += weight[i] * q * q
    return sumqx, sumq2


@njit(inline="always", **JIT)
def search(buf, n, scale, eff_max, steps, tabs):
    """Try inverse scales (5 + 0.1·is)/eff_max, |is| <= steps; keep the best (Σwqx)²/Σwq².

    Returns the scale; L (buf[3]) and on_grid (buf[5]) are those of the accepted candidate,
    untouched when none is accepted.
    """
    weight, waux, xval, L, Laux, on_grid, on_aux, err, failed = buf
    slots, codes, kmap, neighbours = tabs
    best = F32(0.0)
    for step in range(-steps, steps + 1):
        inv = (F32(5.0) + F32(step) * F32(0.1)) / eff_max
        this_scale = F32(1.0) / inv
        for k in range(n // 8):
            on_aux[k] = _place_group(waux, xval, err, failed, Laux, k, inv, this_scale, slots, codes, kmap, neighbours)
        sumqx, sumq2 = _fit(weight, xval, Laux, n)
        if sumq2 > F32(0.0) and sumqx * sumqx > best * sumq2:
            scale = sumqx / sumq2
            best = scale * sumqx
            for i in range(n):
                L[i] = Laux[i]
            for k in range(n // 8):
                on_grid[k] = on_aux[k]
    return scale


@njit(inline="always", **JIT)
def requantize(buf, n, scale, tabs):
    """Requantize the groups not on the grid with 1/scale, then refit the scale if Σwq² > 0."""
    weight, waux, xval, L, _laux, on_grid, _on_aux, err, failed = buf
    slots, codes, kmap, neighbours = tabs
    inv = F32(1.0) / scale
    for k in range(n // 8):
        if not on_grid[k]:
            _place_group(waux, xval, err, failed, L, k, inv, scale, slots, codes, kmap, neighbours)
    sumqx, sumq2 = _fit(weight, xval, L, n)
    return sumqx / sumq2 if sumq2 > F32(0.0) else scale


@njit(inline="always", **JIT)
def grid_index(L, k, kmap):
    """Grid index of the codes of group k (they are on the grid after the search)."""
    u = 0
    mult = 1
    for i in range(8 * k, 8 * k + 8):
        u += L[i] * mult
        mult *= 3
    return kmap[u]


@njit(inline="always", **JIT)
def sub_scale(d, scale):
    """4-bit sub-block scale: clamp(nearest(0.5·(scale/d − 1)), 0, 15) with the float32 1/d."""
    l = nearest_int(F32(0.5) * ((F32(1.0) / d) * scale - F32(1.0)))
    return max(0, min(15, l))
