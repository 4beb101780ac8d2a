"""Symmetric scale searches of ggml's K-quants: ``make_qx_quants`` and ``make_q3_quants``.

Both quantize ``n`` floats to integers ``l`` in ``[-nmax, nmax-1]`` around a signed scale and
store ``L = l + nmax``. They reproduce ggml-quants.c bit for bit: float32 arithmetic in C's
evaluation order, sequential sums, ``nearest_int`` rounding.

Calling convention (shared by other kernels, kept stable): every array argument is a 1-D
array plus a start offset, so a caller passes its whole row / scratch buffer without slicing:
element ``i`` of the group is ``x[x0 + i]``, its code goes to ``L[l0 + i]`` (any integer
dtype, ggml uses int8) and its weight is ``qw[w0 + i]``. ``qw`` of length 0 means "no
weights" (ggml's NULL); ``w0`` is then ignored. ``make_q3_quants_batch`` (only Q3_K uses
make_q3_quants) instead runs all the 16-groups of up to four super-blocks side by side.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._common import F32, JIT, f32_to_u32, nearest_int, signed_absmax
from ._kq_affine_batch import transpose_groups
from ._simd import first_absmax

GROUP_MAX_EPS = F32(1e-15)
N_CANDIDATES = 19  # ggml's first fit, then the 18 tweaked inverse scales
Q3_BATCH = 4  # super-blocks whose 16-groups make_q3_quants_batch runs side by side
QX_WORK = 96  # make_qx_quants scratch: 3 x 32 lanes (inverse scales, sum w*x*l, sum w*l*l)


@njit(**JIT)
def qx_work():
    """A scratch buffer for :func:`make_qx_quants` (allocate once per row, reuse per group)."""
    return np.empty(QX_WORK, dtype=np.float32)


@njit(**JIT)
def _default_weight(rmse_type, v):
    """ggml's weight when no importance weights are given: x^2, 1, |x| or sqrt|x|."""
    if rmse_type == 1:
        return v * v
    if rmse_type == 2:
        return F32(1.0)
    if rmse_type == 3:
        return np.abs(v)
    return np.sqrt(np.abs(v))


@njit(**JIT)
def _clamp(l, lo, hi):
    return max(lo, min(hi, l))


@njit(inline="always", **JIT)
def _write_codes(n, nmax, x, x0, L, l0, iscale):
    for i in range(n):
        L[l0 + i] = nmax + _clamp(nearest_int(iscale * x[x0 + i]), -nmax, nmax - 1)


@njit(inline="always", **JIT)
def _candidate_sums(n, nmax, x, x0, rmse_type, qw, w0, isc, slx, sl2):
    """Sums w*x*l and w*l*l for all candidate inverse scales ``isc`` at once.

    Each candidate's sums are still sequential over i in float32, exactly as ggml computes
    them one candidate after the other; only the candidates run side by side (SIMD lanes).
    """
    for s in range(N_CANDIDATES):
        slx[s] = F32(0.0)
        sl2[s] = F32(0.0)
    use_qw = qw.shape[0] > 0
    lo = -nmax
    hi = nmax - 1
    for i in range(n):
        v = x[x0 + i]
        w = qw[w0 + i] if use_qw else _default_weight(rmse_type, v)
        wx = w * v
        for s in range(N_CANDIDATES):
            l = F32(max(lo, min(hi, nearest_int(isc[s] * v))))
            slx[s] += wx * l
            sl2[s] += w * l * l


@njit(inline="always", **JIT)
def make_qx_quants(n, nmax, x, x0, L, l0, rmse_type, qw, w0, work):
    """ggml's make_qx_quants on ``x[x0:x0+n]``: returns the float32 scale, writes ``L[l0:l0+n]``.

    ``rmse_type`` 0 takes the plain max-based scale; otherwise the weighted least-squares scale
    of the best of 19 candidate inverse scales (weights ``qw[w0:w0+n]``, or by ``rmse_type``:
    1 x^2, 2 one, 3 |x|, else sqrt|x| when ``qw`` is empty). A negative ``rmse_type`` returns
    early after the first fit, as in ggml. ``work`` is float32 scratch of at least
    ``QX_WORK`` elements (see :func:`qx_work`); its contents on entry do not matter.
    """
    amax, vmax = signed_absmax(x, x0, n)
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[l0 + i] = 0
        return F32(0.0)
    iscale = F32(-nmax) / vmax
    if rmse_type == 0:
        _write_codes(n, nmax, x, x0, L, l0, iscale)
        return F32(1.0) / iscale
    return_early = rmse_type < 0
    if return_early:
        rmse_type = -rmse_type
    k = QX_WORK // 3
    isc = work[0:k]
    slx = work[k : 2 * k]
    sl2 = work[2 * k : 3 * k]
    # candidate 0 is the first fit, then is = -9..-1, 1..9 in ggml's order
    isc[0] = iscale
    for s in range(1, N_CANDIDATES):
        step = s - 10 if s <= 9 else s - 9
        isc[s] = -(F32(nmax) + F32(0.1) * F32(step)) / vmax
    _candidate_sums(n, nmax, x, x0, rmse_type, qw, w0, isc, slx, sl2)
    scale = slx[0] / sl2[0] if sl2[0] != F32(0.0) else F32(0.0)
    if return_early:
        _write_codes(n, nmax, x, x0, L, l0, iscale)
        if sl2[0] > F32(0.0):
            return F32(0.5) * (scale + F32(1.0) / iscale)
        return F32(1.0) / iscale
    best = scale * slx[0]
    chosen = 0
    for s in range(1, N_CANDIDATES):
        if sl2[s] > F32(0.0) and slx[s] * slx[s] > best * sl2[s]:
            scale = slx[s] / sl2[s]
            best = scale * slx[s]
            chosen = s
    # only the last accepted candidate's codes survive in ggml, so write them once
    _write_codes(n, nmax, x, x0, L, l0, isc[chosen])
    return scale


@njit(**JIT)
def q3_scratch():
    """Scratch of :func:`make_q3_quants_batch` (allocate once per row)."""
    G = 16 * Q3_BATCH
    return (np.empty((16, G), dtype=np.float32), np.empty((16, G), dtype=np.int8), np.empty((5, G), dtype=np.float32))


@njit(**JIT)
def make_q3_quants_batch(x, x0, nsb, L, scales, scratch):
    """ggml's make_q3_quants(16, nmax=4, do_rmse=true) on every 16-group of ``nsb`` super-blocks.

    The ``16 * nsb`` groups ``x[x0:x0 + 256*nsb]`` (``nsb <= Q3_BATCH``) give their codes group
    after group in ``L`` (l + 4, or 0 for an all-zero group) and their scales in ``scales``; the
    weights are x^2. Each group keeps ggml's order of operations: the groups only run side by
    side (element i of group g at ``xt[i, g]``, unused lanes hold zeros), so the compiler
    vectorizes across them and the lanes hide the latency of each group's dependent chain.
    ggml stops a group's coordinate descent after a pass without change (at most five passes);
    such a pass leaves the group unchanged, so a further pass would change nothing either, and
    passes simply continue while any group changes.
    """
    xt, Lt, st = scratch
    G = 16 * Q3_BATCH  # a constant lane count: whole vectors, no scalar remainder
    used = 16 * nsb
    nmax = 4
    amax, vmax, iscale, sumlx, suml2 = st[0], st[1], st[2], st[3], st[4]
    transpose_groups(x, x0, 16, used, xt)
    xt[:, used:] = F32(0.0)
    for g in range(G):
        amax[g], vmax[g] = first_absmax(x, x0 + 16 * g, 16) if g < used else (F32(0.0), F32(0.0))
        iscale[g] = F32(-nmax) / vmax[g]
        sumlx[g] = F32(0.0)
        suml2[g] = F32(0.0)
    for i in range(16):
        for g in range(G):
            v = xt[i, g]
            l = _nearest_code(iscale[g] * v, nmax)
            Lt[i, g] = l
            w = v * v
            sumlx[g] += w * v * F32(l)
            suml2[g] += w * F32(l) * F32(l)
    for _ in range(5):
        changed = 0
        for i in range(16):
            for g in range(G):
                l, sumlx[g], suml2[g], took = _q3_try_code(xt[i, g], np.int32(Lt[i, g]), sumlx[g], suml2[g], nmax)
                Lt[i, g] = l
                changed += took
        if changed == 0:
            break
    for g in range(used):
        zero = amax[g] < GROUP_MAX_EPS
        for i in range(16):
            L[16 * g + i] = 0 if zero else Lt[i, g] + nmax
        scales[g] = sumlx[g] / suml2[g] if suml2[g] > F32(0.0) and not zero else F32(0.0)


@njit(inline="always", **JIT)
def _nearest_code(f, nmax):
    """``clamp(nearest_int(f), -nmax, nmax - 1)`` in 32-bit integers (twice the SIMD lanes)."""
    l = np.int32(f32_to_u32(f + F32(12582912.0)) & np.uint32(0x007FFFFF)) - np.int32(0x00400000)
    return max(np.int32(-nmax), min(np.int32(nmax - 1), l))


@njit(inline="always", **JIT)
def _q3_try_code(v, l_old, slx_old, sl2_old, nmax):
    """One coordinate-descent step of make_q3_quants: ``(code, sum w*x*l, sum w*l^2, taken)``.

    The best code of the element given the others is computed unconditionally and kept where
    ggml keeps it (remaining sum w*x*l positive, a different code, a better ratio). Scalars
    only, no branches: the lanes of the caller's loop vectorize.
    """
    w = v * v
    li = F32(l_old)
    slx = slx_old - w * v * li
    sl2 = sl2_old - w * li * li
    new_l = _nearest_code(v * sl2 / slx, nmax)
    fl = F32(new_l)
    slx_new = slx + w * v * fl
    sl2_new = sl2 + w * fl * fl
    take = (
        (slx > F32(0.0))
        & (new_l != l_old)
        & (sl2_new > F32(0.0))
        & (slx_new * slx_new * sl2_old > slx_old * slx_old * sl2_new)
    )
    if take:
        return new_l, slx_new, sl2_new, np.int32(1)
    return l_old, slx_old, sl2_old, np.int32(0)
