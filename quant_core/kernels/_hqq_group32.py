"""The HQQ solver of a 32-group without importance, written out: faster, and the same bits.

:func:`hqq_fit32` is :func:`._hqq_solver.hqq_fit` for the Q4_1 / Q5_1 row (n = 32, no importance
weights) with its sums in a fixed vectorised order, the one LLVM chose when ``hqq_fit`` was
compiled with fastmath for that row (the bytes the bundled HQQ measurements were made with):

* the stop pass of :func:`._hqq_solver.hqq_zero`: ``x * s`` rounded once per group (it has
  two uses, so it is not fused), ``x - (q - z) / s`` one fused multiply-add with the
  reciprocal of ``s``; the two 16-lane halves added lane by lane, then the 16 lanes halved
  as a tree (8, 4, 2, 1);
* the guard's two :func:`._hqq_solver._l1` (inlined in ``hqq_fit``, where ``1 / s`` is ``d``):
  ``x * s + z`` and ``x - (q - z) * d`` fused, the same halves and tree.

Here those operations are spelled out (explicit fma, the lanes in a float32 scratch) without
fastmath, so the order cannot move; the shrink thresholds are a table (no pow per iteration),
the loads contiguous, everything inlined in the row. A group whose error exceeds the shrink
threshold (hqq's shrink then acts) is left to the general solver.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._common import F32, JIT
from ._hqq_solver import _THRESHOLD_POWER, BETA, ITERS, KAPPA

N = 32


@intrinsic
def fma32(typingctx, a, b, c):
    """a * b + c in float32 with one rounding (llvm.fma)."""
    if not (a == types.float32 and b == types.float32 and c == types.float32):
        return None
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fnty = ir.FunctionType(f32, [f32, f32, f32])
        fn = builder.module.declare_intrinsic("llvm.fma", [f32], fnty)
        return builder.call(fn, args)

    return sig, codegen


@njit(**JIT)
def _thresholds():
    """hqq_zero's shrink threshold of each iteration: beta^(-1/(2-p)), beta from 10 by x1.01."""
    out = np.empty(ITERS, dtype=np.float32)
    beta = BETA
    for k in range(ITERS):
        out[k] = beta**_THRESHOLD_POWER
        beta *= KAPPA
    return out


THRESHOLDS = _thresholds()


@njit(inline="always", **JIT)
def _code(v, nmax):
    return min(max(np.rint(v), F32(0.0)), F32(nmax))


@njit(inline="always", **JIT)
def _tree(t, o, width):
    """Halve ``t[o:o+width]`` lane by lane down to one value (the vector reduction's order)."""
    while width > 2:
        width //= 2
        for k in range(width):
            t[o + k] = t[o + k] + t[o + k + width]
    return t[o] + t[o + 1]


@njit(inline="always", **JIT)
def _stop_pass(x, x0, r, z, nmax, thr, t):
    """(sum |x - xr|, sum (q - x s), any error above ``thr``) of hqq_zero's pass, its order.

    ``t[:32]`` holds ``x * s``; lane k adds elements k and k + 16 (the two 16-lane halves)."""
    over = False
    for k in range(16):
        xa = x[x0 + np.uint64(k)]
        xb = x[x0 + np.uint64(k + 16)]
        qa = _code(t[k] + z, nmax)
        qb = _code(t[k + 16] + z, nmax)
        ea = np.abs(fma32(z - qa, r, xa))
        eb = np.abs(fma32(z - qb, r, xb))
        t[N + k] = ea + eb
        t[N + 16 + k] = (qa - t[k]) + (qb - t[k + 16])
        over |= (ea > thr) | (eb > thr)
    return _tree(t, N, 16), _tree(t, N + 16, 16), over


@njit(inline="always", **JIT)
def _l1_lane(xi, s, r, z, nmax):
    return np.abs(fma32(z - _code(fma32(xi, s, z), nmax), r, xi))


@njit(inline="always", **JIT)
def _l1_pair(x, x0, s, r, za, zb, nmax, t):
    """(_l1 at za, _l1 at zb) in _l1's order (as inlined in hqq_fit, where 1 / s is d)."""
    for k in range(16):
        xa = x[x0 + np.uint64(k)]
        xb = x[x0 + np.uint64(k + 16)]
        t[N + k] = _l1_lane(xa, s, r, za, nmax) + _l1_lane(xb, s, r, za, nmax)
        t[N + 16 + k] = _l1_lane(xa, s, r, zb, nmax) + _l1_lane(xb, s, r, zb, nmax)
    return _tree(t, N, 16), _tree(t, N + 16, 16)


@njit(inline="always", **JIT)
def _zero32(x, x0, s, r, z, nmax, nonneg, t):
    """hqq_zero's iterations; (z, False), or (z, True) when the shrink would be needed."""
    for i in range(N):
        t[i] = x[x0 + np.uint64(i)] * s
    best = np.float32(np.inf)
    for k in range(ITERS):
        err, acc, over = _stop_pass(x, x0, r, z, nmax, THRESHOLDS[k], t)
        if over:
            return z, True
        z = acc / F32(N)
        if nonneg and z < F32(0.0):
            z = F32(0.0)
        if err < best:
            best = err
        else:
            break
    return z, False


@njit(inline="always", **JIT)
def hqq_fit32(x, x0, d, vmin, nmax, round_zero, nonneg, t):
    """(:func:`._hqq_solver.hqq_fit` of ``x[x0:x0+32]`` without importance, True), or (0, False)
    when the group needs the general solver. ``t`` is float32 scratch of 64 (x s, then lanes)."""
    base = np.uint64(x0)  # unsigned: no wrap-around select, so the loads stay contiguous
    s = F32(1.0) / d
    r = F32(1.0) / s
    z_minmax = -vmin * s
    z0 = np.rint(z_minmax) if round_zero else z_minmax
    z, shrink = _zero32(x, base, s, r, z0, nmax, nonneg, t)
    if shrink:
        return F32(0.0), False
    l1_minmax, l1_z = _l1_pair(x, base, s, d, z_minmax, z, nmax, t)
    if l1_minmax < l1_z:
        z = z_minmax
    return -z * d, True
