"""HQQ's own format, as a reference to compare with: affine b-bit groups of 64 along the row.

This is HQQ as its authors ship it (hqq 0.2.x ``Quantizer.quantize`` with the default
``optimize_weights_proximal_legacy``), not a GGUF type: float in, float out, nothing packed.
Per group of ``group`` weights along the row (HQQ's ``axis=1``):

* min-max start: inverse scale s = (2^b - 1) / (max - min) (1 when max - min <= 1e-4, at most
  2e4), zero z = -min * s, rounded for 4 bits only (HQQ's ``round_zero``);
* proximal solver on z only (s stays): q = clamp(round(w*s + z)), w_r = (q - z) / s,
  e = shrink_p(w - w_r, beta) with shrink_p(x) = sign(x) max(|x| - |x|^(p-1) / beta, 0),
  z = mean(q - (w - e) * s); beta *= kappa; p = 0.7, beta = 10, kappa = 1.01, 20 iterations; it
  stops at the first iteration whose mean |w - w_r| over all the rows given does not improve
  (keeping the z of that iteration, as HQQ does);
* stored: scale 1/s and zero as float16 (HQQ's meta in half precision): b + 32/group bits per
  weight, so 4.5, 3.5 and 2.5 for 4, 3 and 2 bits at group 64.

Rounding is half to even (torch.round). The early stop looks at the rows of one call; callers
that pass a tensor in chunks (the inspector, 4 M weights at a time) decide it per chunk.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from .errors import ShapeError
from .kernels._common import fp16_bits_to_fp32, fp32_to_fp16_bits

GROUP = 64
P_NORM, BETA, KAPPA, ITERS = 0.7, 10.0, 1.01, 20
SCHEMES: dict[str, int] = {"HQQ4_G64": 4, "HQQ3_G64": 3, "HQQ2_G64": 2}
"""Comparison schemes by name: HQQ's native b-bit format at group 64."""


def is_scheme(name: str | None) -> bool:
    """True for the names of :data:`SCHEMES` (HQQ's native format, not a GGUF type)."""
    return name is not None and str(name).upper() in SCHEMES


def scheme_bpw(name: str) -> float:
    """Bits per weight of a scheme: b bits plus a float16 scale and zero per group."""
    return SCHEMES[name.upper()] + 32.0 / GROUP


def scheme_label(name: str) -> str:
    """'HQQ 4-bit g64 (4.5 bpw)'."""
    return f"HQQ {SCHEMES[name.upper()]}-bit g{GROUP} ({scheme_bpw(name):.3g} bpw)"


@njit(cache=True, nogil=True, error_model="numpy")
def _shrink(d, inv_beta, pm1):
    """HQQ's generalised soft threshold of the residual d (0 stays 0), in float32."""
    a = abs(d)
    if a == 0.0:
        return np.float32(0.0)
    t = a - a**pm1 * inv_beta
    return np.float32(math.copysign(t, d)) if t > 0.0 else np.float32(0.0)


@njit(cache=True, nogil=True, error_model="numpy")
def _start(x, r, g, group, qmax, round_zero, s, z):
    lo, hi = np.inf, -np.inf
    for j in range(g * group, (g + 1) * group):
        lo = min(lo, x[r, j])
        hi = max(hi, x[r, j])
    inv = 1.0 if hi - lo <= 1e-4 else min(qmax / (hi - lo), 2e4)
    zero = -lo * inv
    s[r, g] = inv
    z[r, g] = np.rint(zero) if round_zero else zero


@njit(cache=True, nogil=True, error_model="numpy")
def _step(x, r, g, group, qmax, s, z, beta, p):
    """One proximal step of a group: (new zero, sum |w - w_r| at the old zero). float32 inside."""
    inv, zero = np.float32(s[r, g]), np.float32(z[r, g])
    step = np.float32(1.0) / inv
    inv_beta, pm1 = np.float32(1.0 / beta), np.float32(p - 1.0)
    top = np.float32(qmax)
    acc, err = 0.0, 0.0
    for j in range(g * group, (g + 1) * group):
        w = x[r, j]
        q = min(max(np.rint(w * inv + zero), np.float32(0.0)), top)
        d = w - (q - zero) * step
        err += abs(d)
        acc += q - (w - _shrink(d, inv_beta, pm1)) * inv
    return acc / group, err


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _hqq_roundtrip(x, nbits, group, round_zero, p, beta, kappa, iters):
    """A JIT-compiled HQQ quantize + dequantize of float32 rows (see the module docstring)."""
    rows, n = x.shape
    ng = n // group
    qmax = float(2**nbits - 1)
    s = np.empty((rows, ng), np.float64)
    z = np.empty((rows, ng), np.float64)
    new_z = np.empty((rows, ng), np.float64)
    row_err = np.zeros(rows, np.float64)
    for r in prange(rows):
        for g in range(ng):
            _start(x, r, g, group, qmax, round_zero, s, z)
    best = 1e4
    for _ in range(iters):
        for r in prange(rows):
            e = 0.0
            for g in range(ng):
                zg, eg = _step(x, r, g, group, qmax, s, z, beta, p)
                new_z[r, g] = zg
                e += eg
            row_err[r] = e
        z[:, :] = new_z
        beta *= kappa
        err = row_err.sum() / max(1, rows * n)
        if err < best:
            best = err
        else:
            break
    out = np.empty((rows, n), np.float32)
    for r in prange(rows):
        for g in range(ng):
            inv, zero = s[r, g], z[r, g]
            scale16 = fp16_bits_to_fp32(fp32_to_fp16_bits(np.float32(1.0 / inv)))
            zero16 = fp16_bits_to_fp32(fp32_to_fp16_bits(np.float32(zero)))
            for j in range(g * group, (g + 1) * group):
                q = min(max(np.rint(x[r, j] * inv + zero), 0.0), qmax)
                out[r, j] = (np.float32(q) - zero16) * scale16
    return out


def hqq_roundtrip(x: npt.ArrayLike, nbits: int, group: int = GROUP) -> npt.NDArray[np.float32]:
    """Rows of float32 weights through HQQ's native b-bit format and back (dequantized).

    ``x`` is (rows, n) with n a multiple of ``group``; ``nbits`` is 2, 3 or 4 (HQQ's default
    settings for each: zero rounded for 4 bits only). Raises ShapeError on a bad shape.
    """
    rows = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if rows.ndim != 2 or rows.shape[1] == 0 or rows.shape[1] % group:
        raise ShapeError(f"HQQ needs rows whose length is a multiple of {group}, got shape {rows.shape}")
    if nbits not in (2, 3, 4):
        raise ShapeError(f"HQQ's native format here has 2, 3 or 4 bits, not {nbits}")
    return _hqq_roundtrip(rows, nbits, group, nbits == 4, P_NORM, BETA, KAPPA, ITERS)


def scheme_roundtrip(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    """:func:`hqq_roundtrip` for a scheme of :data:`SCHEMES` by name."""
    return hqq_roundtrip(x, SCHEMES[name.upper()])
