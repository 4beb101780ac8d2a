"""Symmetric scale searches of ggml's K-quants: ``make_qx_quants`` and ``make_q3_quants``.

Both quantize ``n`` floats to integers ``l`` in ``[-nmax, nmax-1]`` around a signed scale and
store ``L = l + nmax``. They reproduce ggml-quants.c bit for bit: float32 arithmetic in C's
evaluation order, sequential sums, ``nearest_int`` rounding.

Calling convention (shared by other kernels, kept stable): every array argument is a 1-D
array plus a start offset, so a caller passes its whole row / scratch buffer without slicing:
element ``i`` of the group is ``x[x0 + i]``, its code goes to ``L[l0 + i]`` (any integer
dtype, ggml uses int8) and its weight is ``qw[w0 + i]``. ``qw`` of length 0 means "no
weights" (ggml's NULL); ``w0`` is then ignored.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._common import F32, JIT, nearest_int

# Float division by zero must give C's inf/NaN instead of numba's ZeroDivisionError: extreme
# inputs (scales that overflow to inf, then -128/inf = -0 and 1/-0) reach such divisions.
JIT_IEEE = dict(JIT, error_model="numpy")

GROUP_MAX_EPS = F32(1e-15)
N_CANDIDATES = 19  # ggml's first fit, then the 18 tweaked inverse scales
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


@njit(**JIT)
def _signed_amax(x, x0, n):
    """(|max|, max) of the first element of largest magnitude (strict >, first wins)."""
    amax = F32(0.0)
    vmax = F32(0.0)
    for i in range(x0, x0 + n):
        ax = np.abs(x[i])
        if ax > amax:
            amax = ax
            vmax = x[i]
    return amax, vmax


@njit(**JIT)
def _write_codes(n, nmax, x, x0, L, l0, iscale):
    for i in range(n):
        L[l0 + i] = nmax + _clamp(nearest_int(iscale * x[x0 + i]), -nmax, nmax - 1)


@njit(**JIT)
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


@njit(**JIT_IEEE)
def make_qx_quants(n, nmax, x, x0, L, l0, rmse_type, qw, w0, work):
    """ggml's make_qx_quants on ``x[x0:x0+n]``: returns the float32 scale, writes ``L[l0:l0+n]``.

    ``rmse_type`` 0 takes the plain max-based scale; otherwise the weighted least-squares scale
    of the best of 19 candidate inverse scales (weights ``qw[w0:w0+n]``, or by ``rmse_type``:
    1 x^2, 2 one, 3 |x|, else sqrt|x| when ``qw`` is empty). A negative ``rmse_type`` returns
    early after the first fit, as in ggml. ``work`` is float32 scratch of at least
    ``QX_WORK`` elements (see :func:`qx_work`); its contents on entry do not matter.
    """
    amax, vmax = _signed_amax(x, x0, n)
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
    slx = work[k:2 * k]
    sl2 = work[2 * k:3 * k]
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


@njit(**JIT_IEEE)
def make_q3_quants(n, nmax, x, x0, L, l0, do_rmse):
    """ggml's make_q3_quants on ``x[x0:x0+n]`` (weights x^2): returns the scale, writes L.

    With ``do_rmse`` the codes are refined by coordinate descent; a coordinate is only
    revisited when the remaining sum w*x*l is positive, which with ggml's negative initial
    inverse scale happens only in groups whose largest-magnitude element is negative.
    """
    amax, vmax = _signed_amax(x, x0, n)
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[l0 + i] = 0
        return F32(0.0)
    iscale = F32(-nmax) / vmax
    if not do_rmse:
        _write_codes(n, nmax, x, x0, L, l0, iscale)
        return F32(1.0) / iscale
    sumlx = F32(0.0)
    suml2 = F32(0.0)
    for i in range(n):
        v = x[x0 + i]
        l = _clamp(nearest_int(iscale * v), -nmax, nmax - 1)
        L[l0 + i] = l
        w = v * v
        sumlx += w * v * F32(l)
        suml2 += w * F32(l) * F32(l)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            v = x[x0 + i]
            w = v * v
            li = F32(L[l0 + i])
            slx = sumlx - w * v * li
            if slx > F32(0.0):
                sl2 = suml2 - w * li * li
                new_l = _clamp(nearest_int(v * sl2 / slx), -nmax, nmax - 1)
                if new_l != L[l0 + i]:
                    fl = F32(new_l)
                    slx += w * v * fl
                    sl2 += w * fl * fl
                    if sl2 > F32(0.0) and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[l0 + i] = new_l
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    for i in range(n):
        L[l0 + i] += nmax
    return sumlx / suml2 if suml2 > F32(0.0) else F32(0.0)
