"""HQQ's proximal solver of one group's affine zero, in float32 (hqq 0.2.8's default variant).

HQQ (Half-Quadratic Quantization, Badri & Shaji 2023) quantizes a group as
``q = clamp(round(x * s + z), 0, nmax)`` and decodes ``(q - z) / s``, with ``s`` an inverse scale.
``s`` comes from the group's min-max; its optimiser only moves the zero ``z``, minimising the
l_p "norm" (p = 0.7) of the error by half-quadratic splitting:

* ``e = shrink_p(x - (q - z) / s, beta)`` with
  ``shrink_p(v) = sign(v) * max(|v| - |v|^(p-1) / beta, 0)`` (the proximal step of |.|^p),
* ``z = mean(q - (x - e) * s)``, ``beta *= kappa``,

for at most 20 iterations from beta = 10, kappa = 1.01, stopping at the first iteration whose
mean |x - (q - z) / s| (measured before that iteration's update) does not improve, keeping the
updated z: ``optimize_weights_proximal_legacy``, which is hqq's ``optimize_weights_proximal``.

No fastmath: with re-associated sums the bytes depended on how LLVM vectorised the loops in
each compilation (a fresh compile and the disk cache gave different Q4_1 bytes with an
importance matrix); in source order they are the same on every run and machine.

Differences from hqq, all on purpose: the stop test runs per group (hqq averages the error of
the whole tensor, which would tie every row of a parallel kernel together); hqq's clamps for
half-precision arithmetic (s <= 2e4, s = 1 when the range is <= 1e-4) are left out, since
the solver runs in float32 and what is stored is the GGUF block's own fp16 scale; with
``nonneg`` (the K-quants, whose stored min is a non-negative code) the range includes 0 and z
is kept >= 0. With importance weights ``qw`` the mean of the zero update and the stop error are
weighted by them (a weighted least-absolute fit of the offset); without, every weight is 1.

One guard is added (:func:`hqq_fit`): when the solver's zero has a larger (weighted) L1 error
than the plain min-max zero, the min-max zero is kept, as hqq's own autograd optimiser reverts
to its start when it does not improve. Without it about a quarter of the 32-groups of normal
weights end worse than ggml's min-max Q4_1: for weights of typical size (|error| < 0.17) the
shrink is exactly 0, so the update only centres the rounding residuals.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._common import F32, JIT

LP_NORM = F32(0.7)
BETA = F32(10.0)
KAPPA = F32(1.01)
ITERS = 20
# |v| - |v|^(p-1)/beta > 0  <=>  |v| > beta^(-1/(2-p)): below it the shrink is exactly 0
_THRESHOLD_POWER = F32(-1.0) / (F32(2.0) - LP_NORM)


@njit(inline="always", **JIT)
def _weight(qw, k, has_w):
    return qw[k] if has_w else F32(1.0)


@njit(inline="always", **JIT)
def _shrink_sum(x, x0, n, qw, has_w, s, z, nmax, beta, thr):
    """sum w * e * s over the group's elements whose error is above the shrink threshold."""
    p1 = LP_NORM - F32(1.0)
    acc = F32(0.0)
    for i in range(n):
        xi = x[x0 + i]
        q = min(max(np.rint(xi * s + z), F32(0.0)), F32(nmax))
        e = xi - (q - z) / s
        ae = np.abs(e)
        if ae > thr:
            shrunk = max(ae - ae**p1 / beta, F32(0.0))
            acc += _weight(qw, x0 + i, has_w) * np.sign(e) * shrunk * s
    return acc


@njit(inline="always", **JIT)
def _zero_step(x, x0, n, qw, has_w, s, z, nmax, thr):
    """One pass with e = 0: (sum w |x - xr|, sum w (q - x s), any error above ``thr``)."""
    err = F32(0.0)
    acc = F32(0.0)
    over = False
    for i in range(n):
        xi = x[x0 + i]
        wi = _weight(qw, x0 + i, has_w)
        q = min(max(np.rint(xi * s + z), F32(0.0)), F32(nmax))
        ae = np.abs(xi - (q - z) / s)
        err += wi * ae
        acc += wi * (q - xi * s)
        over |= ae > thr
    return err, acc, over


@njit(**JIT)
def hqq_zero(x, x0, n, qw, s, z, nmax, nonneg):
    """HQQ's optimised zero of ``x[x0:x0+n]`` for the inverse scale ``s`` (> 0), starting at ``z``.

    ``qw`` is float32 importance per element of ``x`` (indexed like x) or of length 0.
    """
    has_w = qw.shape[0] > 0
    sum_w = F32(0.0)
    for i in range(n):
        sum_w += _weight(qw, x0 + i, has_w)
    if not sum_w > F32(0.0):  # an all-zero importance slice: weigh the elements equally
        has_w = False
        sum_w = F32(n)
    beta = BETA
    best = np.float32(np.inf)
    for _ in range(ITERS):
        thr = beta**_THRESHOLD_POWER
        err, acc, over = _zero_step(x, x0, n, qw, has_w, s, z, nmax, thr)
        if over:
            acc += _shrink_sum(x, x0, n, qw, has_w, s, z, nmax, beta, thr)
        z = acc / sum_w
        if nonneg and z < F32(0.0):
            z = F32(0.0)
        beta *= KAPPA
        if err < best:
            best = err
        else:
            break
    return z


@njit(**JIT)
def group_range(x, x0, n, nonneg):
    """(min, max) of the group; with ``nonneg`` the min is at most 0 (the K-quants' range)."""
    vmin = x[x0]
    vmax = x[x0]
    for i in range(1, n):
        vmin = min(vmin, x[x0 + i])
        vmax = max(vmax, x[x0 + i])
    if nonneg:
        vmin = min(vmin, F32(0.0))
    return vmin, vmax


@njit(**JIT)
def hqq_fit(x, x0, n, qw, d, vmin, nmax, round_zero, nonneg):
    """HQQ's offset for the step ``d`` (> 0): the ``m`` of ``x ~ d * q + m`` (m = -z d).

    The zero starts at ``-vmin / d`` (rounded to an integer with ``round_zero``, as hqq does for
    4 bits) and is optimised by :func:`hqq_zero` for that step.
    """
    s = F32(1.0) / d
    z_minmax = -vmin * s
    z = np.rint(z_minmax) if round_zero else z_minmax
    z = hqq_zero(x, x0, n, qw, s, z, nmax, nonneg)
    if _l1(x, x0, n, qw, s, z_minmax, nmax) < _l1(x, x0, n, qw, s, z, nmax):
        z = z_minmax  # the guard: never worse than the plain min-max fit
    return -z * d


@njit(**JIT)
def _l1(x, x0, n, qw, s, z, nmax):
    """sum w |x - (q - z) / s| of the group (w = 1 without importance)."""
    has_w = qw.shape[0] > 0
    err = F32(0.0)
    for i in range(n):
        xi = x[x0 + i]
        q = min(max(np.rint(xi * s + z), F32(0.0)), F32(nmax))
        err += _weight(qw, x0 + i, has_w) * np.abs(xi - (q - z) / s)
    return err


@njit(inline="always", **JIT)
def affine_codes(x, x0, n, d, m, nmax, L, l0):
    """The nearest codes of ``x ~ d * q + m`` for the stored (decoded) d and m into L[l0:l0+n]."""
    inv = F32(1.0) / d if d != F32(0.0) else F32(0.0)
    for i in range(n):
        L[l0 + i] = np.uint8(min(max(np.rint((x[x0 + i] - m) * inv), F32(0.0)), F32(nmax)))
