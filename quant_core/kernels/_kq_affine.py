"""Affine (scale + min) search helpers of the K-quants, bit-exact with ggml-quants.c.

* ``make_qkx2_quants`` / ``make_qkx3_quants``: fit ``x ~ scale * L + min`` with codes
  ``L in [0, nmax]`` and ``min <= 0`` (the _ref paths use qkx2, the imatrix paths qkx3).
* ``make_qp_quants``: quantize non-negative values (sub-block scales or mins) to ``[0, nmax]``.

All arguments are 1-D arrays covering exactly the n values of one group (pass slices such as
``x[32*j:32*j+32]``). Code arrays are uint8 like ggml's, so a negative code wraps the same way.
Every float is float32 and every sum runs in C order, so the results match ggml bit for bit.
To fit many groups at once (several times faster), see :mod:`._kq_affine_batch`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._common import F32, JIT, nearest_int

GROUP_MAX_EPS = F32(1e-15)


@njit(**JIT)
def _affine_error(x, w, has_w, L, scale, vmin, use_mad):
    """Sum of w * |scale*L + min - x| (MAD) or w * (scale*L + min - x)^2, in index order."""
    err = F32(0.0)
    for i in range(x.shape[0]):
        diff = scale * F32(L[i]) + vmin - x[i]
        diff = np.abs(diff) if use_mad else diff * diff
        wi = w[i] if has_w else x[i] * x[i]
        err += wi * diff
    return err


@njit(**JIT)
def _affine_search(x, w, has_w, L, Laux, nmax, rmin, rdelta, nstep, use_mad, qkx3):
    """Body shared by make_qkx2_quants (qkx3=False) and make_qkx3_quants (qkx3=True)."""
    n = x.shape[0]
    fmax = F32(nmax)
    vmin = x[0]
    vmax = x[0]
    sum_w = w[0] if has_w else x[0] * x[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        xi = x[i]
        if xi < vmin:
            vmin = xi
        if xi > vmax:
            vmax = xi
        wi = w[i] if has_w else xi * xi
        sum_w += wi
        sum_x += wi * xi
    if vmin > F32(0.0):
        vmin = F32(0.0)
    if (vmax <= vmin) if qkx3 else (vmax == vmin):
        for i in range(n):
            L[i] = 0
        return F32(0.0), -vmin
    iscale = fmax / (vmax - vmin)
    scale = F32(1.0) / iscale
    for i in range(n):
        L[i] = max(0, min(nmax, nearest_int(iscale * (x[i] - vmin))))
    best_error = _affine_error(x, w, has_w, L, scale, vmin, use_mad)
    for step in range(nstep + 1):
        # vmin is the current best fit (it moves when a step is accepted), as in ggml
        iscale = (rmin + rdelta * F32(step) + fmax) / (vmax - vmin)
        sum_l = F32(0.0)
        sum_l2 = F32(0.0)
        sum_xl = F32(0.0)
        for i in range(n):
            v = iscale * (x[i] - vmin)
            if qkx3:
                l = nearest_int(min(v, fmax)) if v > F32(0.0) else 0
            else:
                l = max(0, min(nmax, nearest_int(v)))
            Laux[i] = l
            fl = F32(l)
            wi = w[i] if has_w else x[i] * x[i]
            sum_l += wi * fl
            sum_l2 += wi * fl * fl
            sum_xl += wi * fl * x[i]
        D = sum_w * sum_l2 - sum_l * sum_l
        if F32(0.0) < D:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            if this_min > F32(0.0):
                this_min = F32(0.0)
                this_scale = sum_xl / sum_l2
            cur_error = _affine_error(x, w, has_w, Laux, this_scale, this_min, use_mad)
            if cur_error < best_error:
                for i in range(n):
                    L[i] = Laux[i]
                best_error = cur_error
                scale = this_scale
                vmin = this_min
    return scale, -vmin


@njit(**JIT)
def make_qkx2_quants(x, w, L, Laux, nmax, rmin, rdelta, nstep, use_mad):
    """ggml's make_qkx2_quants on the group ``x`` (n = len(x)) with weights ``w`` (length n).

    Writes the codes to ``L`` (uint8[n]); ``Laux`` is uint8[n] scratch. ``nmax`` int,
    ``rmin``/``rdelta`` floats (rounded to float32 here), ``nstep`` int, ``use_mad`` bool
    (absolute instead of squared error). Returns ``(scale, the_min)`` as float32, where
    ``x ~ scale*L - the_min`` and ``the_min >= 0`` (it is ggml's ``-min``).
    """
    return _affine_search(x, w, True, L, Laux, nmax, F32(rmin), F32(rdelta), nstep, use_mad, False)


@njit(**JIT)
def make_qkx3_quants(x, w, L, Laux, nmax, rmin, rdelta, nstep, use_mad):
    """ggml's make_qkx3_quants: as :func:`make_qkx2_quants` (same arguments and result).

    Differences kept from ggml: ``w`` of length 0 means "no weights" (then w = x*x), a group
    is degenerate when max <= min, and search codes are clamped before rounding.
    """
    has_w = w.shape[0] > 0
    return _affine_search(x, w, has_w, L, Laux, nmax, F32(rmin), F32(rdelta), nstep, use_mad, True)


@njit(**JIT)
def _qp_mse(x, w, nmax, iscale, clamp):
    """Weighted squared error of x against (1/iscale)*nearest(iscale*x)."""
    scale = F32(1.0) / iscale
    mse = F32(0.0)
    for i in range(x.shape[0]):
        l = nearest_int(iscale * x[i])
        if clamp:
            l = min(nmax, l)
        else:
            l = l & 0xFF  # ggml stores the first guess into uint8 before using it
        diff = x[i] - scale * F32(l)
        mse += w[i] * diff * diff
    return mse


@njit(**JIT)
def make_qp_quants(x, w, L, nmax):
    """ggml's make_qp_quants: codes ``L`` (uint8[n]) in [0, nmax] for non-negative ``x``.

    ``w`` (float32[n]) are the weights of the squared error. Returns the float32 scale
    (0 when max(x) < 1e-15, then all codes are 0).
    """
    n = x.shape[0]
    vmax = F32(0.0)
    for i in range(n):
        vmax = vmax if vmax > x[i] else x[i]
    if vmax < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return F32(0.0)
    fmax = F32(nmax)
    iscale = fmax / vmax
    best_mse = _qp_mse(x, w, nmax, iscale, False)
    for step in range(-4, 5):
        if step == 0:
            continue
        iscale_is = (F32(0.1) * F32(step) + fmax) / vmax
        mse = _qp_mse(x, w, nmax, iscale_is, True)
        if mse < best_mse:
            best_mse = mse
            iscale = iscale_is
    sumlx = F32(0.0)
    suml2 = F32(0.0)
    for i in range(n):
        l = min(nmax, nearest_int(iscale * x[i]))
        L[i] = l
        fl = F32(l)
        sumlx += w[i] * x[i] * fl
        suml2 += w[i] * fl * fl
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            wi = w[i]
            li = F32(L[i])
            slx = sumlx - wi * x[i] * li
            sl2 = suml2 - wi * li * li
            if slx > F32(0.0) and sl2 > F32(0.0):
                new_l = min(nmax, nearest_int(x[i] * sl2 / slx))
                if new_l != np.int64(L[i]):
                    fl = F32(new_l)
                    slx += wi * x[i] * fl
                    sl2 += wi * fl * fl
                    if slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = new_l
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > F32(0.0) else F32(0.0)
