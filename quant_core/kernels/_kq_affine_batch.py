"""make_qkx2_quants / make_qkx3_quants run on G groups in lockstep (same bytes, more speed).

The single-group search is a chain of dependent float32 additions (latency bound). Running the
G groups of a super-block side by side gives the CPU G independent chains per step, which the
compiler turns into SIMD lanes, while every group still sums its own elements in ggml's order:
the results are bit-identical to :mod:`._kq_affine` (checked by tests/core/test_kq_affine.py).

Layout: element i of group g lives at ``xt[i, g]`` (``transpose_groups`` builds it).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ._common import F32, JIT, nearest_int

# rows of the float32 scratch ``st`` (N_STATE, G)
_VMIN, _VMAX, _SUMW, _SUMX, _ISCALE, _BEST, _SL, _SL2, _SXL, _TS, _TM, _ERR = range(12)
N_STATE = 12


@njit(inline="always", **JIT)
def transpose_groups(x, start, n, G, xt):
    """xt[i, g] = x[start + g*n + i] for the G consecutive n-groups starting at ``start``."""
    for g in range(G):
        for i in range(n):
            xt[i, g] = x[start + g * n + i]


@njit(**JIT)
def _codes(v, nmax, fmax, qkx3):
    """Search-step code: qkx2 clamps after rounding, qkx3 clamps v first (0 for v <= 0)."""
    if qkx3:
        v = v if v > F32(0.0) else F32(0.0)
        return nearest_int(v if v < fmax else fmax)
    l = nearest_int(v)
    l = l if l < nmax else nmax
    return l if l > 0 else 0


@njit(**JIT)
def _error_pass(xt, wt, Lt, st, scale_row, min_row, use_mad):
    """st[_ERR, g] = sum over i of w*|d| (MAD) or w*d^2, d = scale*L + min - x, in index order."""
    n, G = xt.shape
    for g in range(G):
        st[_ERR, g] = F32(0.0)
    for i in range(n):
        for g in range(G):
            diff = st[scale_row, g] * F32(Lt[i, g]) + st[min_row, g] - xt[i, g]
            diff = np.abs(diff) if use_mad else diff * diff
            st[_ERR, g] += wt[i, g] * diff


@njit(**JIT)
def _init(xt, wt, Lt, nmax, st, scales, use_mad):
    """Range, weight sums, the first guess (codes in Lt, scale in ``scales``) and its error."""
    n, G = xt.shape
    for g in range(G):
        st[_VMIN, g] = xt[0, g]
        st[_VMAX, g] = xt[0, g]
        st[_SUMW, g] = wt[0, g]
        st[_SUMX, g] = wt[0, g] * xt[0, g]
    for i in range(1, n):
        for g in range(G):
            xi = xt[i, g]
            st[_VMIN, g] = xi if xi < st[_VMIN, g] else st[_VMIN, g]
            st[_VMAX, g] = xi if xi > st[_VMAX, g] else st[_VMAX, g]
            st[_SUMW, g] += wt[i, g]
            st[_SUMX, g] += wt[i, g] * xi
    for g in range(G):
        if st[_VMIN, g] > F32(0.0):
            st[_VMIN, g] = F32(0.0)
        st[_ISCALE, g] = F32(nmax) / (st[_VMAX, g] - st[_VMIN, g])
        scales[g] = F32(1.0) / st[_ISCALE, g]
    for i in range(n):
        for g in range(G):
            l = nearest_int(st[_ISCALE, g] * (xt[i, g] - st[_VMIN, g]))
            l = l if l < nmax else nmax
            Lt[i, g] = l if l > 0 else 0
    # keep the first guess in the _TS/_TM rows for the error pass
    for g in range(G):
        st[_TS, g] = scales[g]
        st[_TM, g] = st[_VMIN, g]
    _error_pass(xt, wt, Lt, st, _TS, _TM, use_mad)
    for g in range(G):
        st[_BEST, g] = st[_ERR, g]


@njit(**JIT)
def _step(xt, wt, Lt, Laux, nmax, num, st, scales, use_mad, qkx3):
    """One search step with iscale = num/(max - min) for every group; accept improvements."""
    n, G = xt.shape
    fmax = F32(nmax)
    for g in range(G):
        st[_ISCALE, g] = num / (st[_VMAX, g] - st[_VMIN, g])
        st[_SL, g] = F32(0.0)
        st[_SL2, g] = F32(0.0)
        st[_SXL, g] = F32(0.0)
    for i in range(n):
        for g in range(G):
            l = _codes(st[_ISCALE, g] * (xt[i, g] - st[_VMIN, g]), nmax, fmax, qkx3)
            Laux[i, g] = l
            fl = F32(l)
            w = wt[i, g]
            st[_SL, g] += w * fl
            st[_SL2, g] += w * fl * fl
            st[_SXL, g] += w * fl * xt[i, g]
    for g in range(G):
        sum_w = st[_SUMW, g]
        sum_l = st[_SL, g]
        sum_l2 = st[_SL2, g]
        sum_xl = st[_SXL, g]
        D = sum_w * sum_l2 - sum_l * sum_l
        this_scale = (sum_w * sum_xl - st[_SUMX, g] * sum_l) / D
        this_min = (sum_l2 * st[_SUMX, g] - sum_l * sum_xl) / D
        if this_min > F32(0.0):
            this_min = F32(0.0)
            this_scale = sum_xl / sum_l2
        st[_TS, g] = this_scale
        st[_TM, g] = this_min
    _error_pass(xt, wt, Laux, st, _TS, _TM, use_mad)
    for g in range(G):
        D = st[_SUMW, g] * st[_SL2, g] - st[_SL, g] * st[_SL, g]
        if F32(0.0) < D and st[_ERR, g] < st[_BEST, g]:
            for i in range(n):
                Lt[i, g] = Laux[i, g]
            st[_BEST, g] = st[_ERR, g]
            scales[g] = st[_TS, g]
            st[_VMIN, g] = st[_TM, g]


@njit(**JIT)
def affine_search_batch(xt, wt, Lt, Laux, nmax, rmin, rdelta, nstep, use_mad, qkx3, scales, mins, st):
    """make_qkx2_quants (qkx3=False) or make_qkx3_quants (qkx3=True) on the G columns of xt.

    ``xt``/``wt``: float32 (n, G) values and weights; ``Lt``: uint8 (n, G) codes out;
    ``Laux``: uint8 (n, G) scratch; ``scales``/``mins``: float32[G] out (mins = ggml's
    the_min >= 0); ``st``: float32 (N_STATE, G) scratch. Other arguments as in ggml.
    A constant group (max == min) needs no special case: its iscale is inf, inf*0 = nan
    rounds to code 0, 1/inf gives scale 0 and D = 0 rejects every step, as ggml's early exit.
    """
    G = xt.shape[1]
    _init(xt, wt, Lt, nmax, st, scales, use_mad)
    if nstep >= 1:
        rmin32 = F32(rmin)
        rdelta32 = F32(rdelta)
        for step in range(nstep + 1):
            num = rmin32 + rdelta32 * F32(step) + F32(nmax)
            _step(xt, wt, Lt, Laux, nmax, num, st, scales, use_mad, qkx3)
    for g in range(G):
        mins[g] = -st[_VMIN, g]


GroupScratch = namedtuple("GroupScratch", "xt wt Lt Laux st scales mins sw Ls Lm L rq")
"""Per-row work arrays of a super-block of G n-groups (see :func:`new_scratch`)."""


@njit(**JIT)
def new_scratch(n, G):
    """Scratch for one row: transposed values/weights/codes (n, G), state, per-group results,
    the super-block's codes ``L`` (uint8[n*G], group-major as ggml's L) and float32 room
    ``rq`` for the final requantization (2*G scales, then 2*n*G)."""
    return GroupScratch(
        np.empty((n, G), dtype=np.float32),
        np.empty((n, G), dtype=np.float32),
        np.empty((n, G), dtype=np.uint8),
        np.empty((n, G), dtype=np.uint8),
        np.empty((N_STATE, G), dtype=np.float32),
        np.empty(G, dtype=np.float32),
        np.empty(G, dtype=np.float32),
        np.empty(G, dtype=np.float32),
        np.empty(G, dtype=np.uint8),
        np.empty(G, dtype=np.uint8),
        np.empty(n * G, dtype=np.uint8),
        np.empty(2 * G + 2 * n * G, dtype=np.float32),
    )


@njit(**JIT)
def untranspose_codes(s):
    """Copy the batch codes ``s.Lt[i, g]`` to ``s.L[g*n + i]``."""
    n, G = s.Lt.shape
    for g in range(G):
        for i in range(n):
            s.L[g * n + i] = s.Lt[i, g]


@njit(inline="always", **JIT)
def fit_groups(s, nmax, rmin, rdelta, nstep, use_mad, qkx3):
    """:func:`affine_search_batch` on the scratch's groups ``s.xt`` with weights ``s.wt``.

    Codes go to ``s.L`` in group order, scales to ``s.scales`` and mins to ``s.mins``.
    """
    affine_search_batch(s.xt, s.wt, s.Lt, s.Laux, nmax, rmin, rdelta, nstep, use_mad, qkx3, s.scales, s.mins, s.st)
    untranspose_codes(s)


@njit(inline="always", **JIT)
def fit_groups_imatrix(x, x0, qw, sigma2, nmax, s):
    """make_qkx3_quants(n, nmax, w, -0.9, 0.05, 36) on the G n-groups from ``x[x0]``.

    The weights are ggml's ``qw * sqrt(sigma2 + x^2)`` (``qw`` indexed like ``x``); each
    group's weight sum goes to ``s.sw``, the rest as :func:`fit_groups`.
    """
    n, G = s.xt.shape
    transpose_groups(x, x0, n, G, s.xt)
    for g in range(G):
        s.sw[g] = F32(0.0)
    for i in range(n):
        for g in range(G):
            w = qw[x0 + n * g + i] * np.sqrt(sigma2 + s.xt[i, g] * s.xt[i, g])
            s.wt[i, g] = w
            s.sw[g] += w
    fit_groups(s, nmax, F32(-0.9), F32(0.05), 36, False, True)


@njit(inline="always", **JIT)
def scale_min_maxima(s):
    """Largest group scale and largest group min (from 0, as ggml's _ref loops)."""
    max_scale = F32(0.0)
    max_min = F32(0.0)
    for g in range(s.scales.shape[0]):
        if s.scales[g] > max_scale:
            max_scale = s.scales[g]
        if s.mins[g] > max_min:
            max_min = s.mins[g]
    return max_scale, max_min
