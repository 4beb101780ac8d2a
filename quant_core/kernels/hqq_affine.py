"""The HQQ encoder of the affine GGUF types: Q4_1, Q5_1 and the sub-blocks of Q2_K, Q4_K, Q5_K.

Every group (32 weights for Q4_1/Q5_1 and the Q4_K/Q5_K sub-blocks, 16 for Q2_K) gets its step
from its min-max and its zero from HQQ's proximal solver (:mod:`._hqq_solver`); the result is
then fitted to what the block stores, so that the optimisation is of the stored values:

* Q4_1 / Q5_1: the step is the fp16 d the block stores, the solver runs for that step, the
  offset is stored as fp16 m, and the codes are the nearest for the stored (d, m).
* Q2_K / Q4_K / Q5_K: the groups' steps and mins are rounded to 4-bit (Q2_K) or 6-bit codes
  under fp16 super-block d and dmin exactly as ggml's _ref path rounds them; then, for each
  group's stored step d * sc, the solver runs again (warm-started) and its min is rounded to
  the min code under the stored dmin; the codes are ggml's requantization against the
  stored, decoded scales and mins.

An importance matrix weighs the solver: the zero update is the importance-weighted mean, and
the early stop compares importance-weighted mean absolute errors (see :mod:`._hqq_solver`).
The steps and the super-block rounding do not use it. The blocks decode with the types' usual
dequantizers (gguf-py, llama.cpp), but are not the bytes llama-quantize writes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..qtypes import QK_K, QTYPES
from ._common import F32, JIT, JIT_PARALLEL, load_fp16, nearest_int, store_fp16
from ._hqq_group32 import hqq_fit32
from ._hqq_solver import affine_codes, group_range, hqq_fit
from ._kq_affine_batch import new_scratch
from ._legacy_imat import QK, pack_block
from ._rows import quantize_rows
from .kq_4_5 import _pack_scale_min, _requantize, _scales_ref, _store_codes, get_scale_min_k4
from .q2_k import D_OFFSET as Q2_K_D_OFFSET
from .q2_k import _requantize_and_store, round_scales_ref
from .registry import encoder_quantizer

Q4_1_BYTES = QTYPES["Q4_1"].type_size
Q5_1_BYTES = QTYPES["Q5_1"].type_size
Q2_K_BYTES = QTYPES["Q2_K"].type_size
Q4_K_BYTES = QTYPES["Q4_K"].type_size
Q5_K_BYTES = QTYPES["Q5_K"].type_size


@njit(inline="always", **JIT)
def _legacy_row(x, qw, out, five_bits):
    """Q4_1 / Q5_1: fp16 d from the min-max, HQQ's m for that d, nearest codes for (d, m)."""
    nmax = 31 if five_bits else 15
    block_bytes = Q5_1_BYTES if five_bits else Q4_1_BYTES
    L = np.empty(QK, dtype=np.uint8)
    t = np.empty(2 * QK, dtype=np.float32)
    for b in range(x.shape[0] // QK):
        base = b * QK
        o = b * block_bytes
        vmin, vmax = group_range(x, base, QK, False)
        d = store_fp16(out, o, (vmax - vmin) / F32(nmax))
        m = vmin
        if d > F32(0.0):
            done = False
            if qw.shape[0] == 0:
                m, done = hqq_fit32(x, base, d, vmin, nmax, not five_bits, False, t)
            if not done:
                m = hqq_fit(x, base, QK, qw, d, vmin, nmax, not five_bits, False)
        m = store_fp16(out, o + 2, m)
        affine_codes(x, base, QK, d, m, nmax, L, 0)
        pack_block(L, out, o + 4, five_bits)


@njit(inline="always", **JIT)
def _fit_groups(x, base, qw, nmax, round_zero, s):
    """Stage 1 of the K-quants: each group's step and HQQ min (>= 0) into s.scales, s.mins."""
    n = s.xt.shape[0]
    for g in range(s.xt.shape[1]):
        x0 = base + g * n
        vmin, vmax = group_range(x, x0, n, True)
        d = (vmax - vmin) / F32(nmax)
        s.scales[g] = d
        s.mins[g] = -vmin
        if d > F32(0.0):
            s.mins[g] = -hqq_fit(x, x0, n, qw, d, vmin, nmax, round_zero, True)
    for k in range(s.L.shape[0]):
        s.L[k] = 0  # the codes of a group whose stored step is 0 (any code decodes the same)


@njit(inline="always", **JIT)
def _refit_min(x, x0, n, qw, dj, dmin, code, min_j, nmax, cmax):
    """The min code of a group for its stored step ``dj``: HQQ again, then rounded under dmin."""
    if dj <= F32(0.0) or dmin <= F32(0.0):
        return code
    m = hqq_fit(x, x0, n, qw, dj, -min_j, nmax, False, True)
    return max(0, min(cmax, nearest_int(-m / dmin)))


@njit(inline="always", **JIT)
def _k45_row(x, qw, out, five_bits):
    """Q4_K / Q5_K: eight 32-groups, 6-bit scale and min codes under fp16 d and dmin."""
    nmax = 31 if five_bits else 15
    block_bytes = Q5_K_BYTES if five_bits else Q4_K_BYTES
    s = new_scratch(32, 8)
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * block_bytes
        _fit_groups(x, base, qw, nmax, not five_bits, s)
        _scales_ref(s, out, o)
        d_all = load_fp16(out, o)
        dmin_all = load_fp16(out, o + 2)
        for j in range(8):
            sc, lm = get_scale_min_k4(j, out, o + 4)
            s.Ls[j] = sc
            s.Lm[j] = _refit_min(x, base + 32 * j, 32, qw, d_all * F32(sc), dmin_all, lm, s.mins[j], nmax, 63)
        for k in range(12):
            out[o + 4 + k] = 0
        for j in range(8):
            _pack_scale_min(out, o + 4, j, np.int64(s.Ls[j]), np.int64(s.Lm[j]))
        _requantize(x, base, nmax, s, out, o)
        _store_codes(s.L, five_bits, out, o)


@njit(**JIT)
def _q2_k_row(x, qw, out):
    """Q2_K: sixteen 16-groups, 4-bit scale and min codes under fp16 d and dmin."""
    s = new_scratch(16, 16)
    for b in range(x.shape[0] // QK_K):
        base = b * QK_K
        o = b * Q2_K_BYTES
        _fit_groups(x, base, qw, 3, False, s)
        round_scales_ref(s, out, o)
        d_all = load_fp16(out, o + Q2_K_D_OFFSET)
        dmin_all = load_fp16(out, o + Q2_K_D_OFFSET + 2)
        for j in range(16):
            sc = np.int64(out[o + j]) & 0xF
            lm = np.int64(out[o + j]) >> 4
            lm = _refit_min(x, base + 16 * j, 16, qw, d_all * F32(sc), dmin_all, lm, s.mins[j], 3, 15)
            out[o + j] = sc | (lm << 4)
        _requantize_and_store(x, base, s, out, o)


@njit(**JIT)
def _q4_1_row(x, qw, out):
    _legacy_row(x, qw, out, False)


@njit(**JIT)
def _q5_1_row(x, qw, out):
    _legacy_row(x, qw, out, True)


@njit(**JIT)
def _q4_k_row(x, qw, out):
    _k45_row(x, qw, out, False)


@njit(**JIT)
def _q5_k_row(x, qw, out):
    _k45_row(x, qw, out, True)


@encoder_quantizer("hqq", "Q4_1")
@njit(**JIT_PARALLEL)
def hqq_q4_1(x, qw):
    """Q4_1 rows with HQQ's offsets (see the module docstring)."""
    return quantize_rows(x, qw, _q4_1_row, QK, Q4_1_BYTES)


@encoder_quantizer("hqq", "Q5_1")
@njit(**JIT_PARALLEL)
def hqq_q5_1(x, qw):
    """Q5_1 rows with HQQ's offsets."""
    return quantize_rows(x, qw, _q5_1_row, QK, Q5_1_BYTES)


@encoder_quantizer("hqq", "Q2_K")
@njit(**JIT_PARALLEL)
def hqq_q2_k(x, qw):
    """Q2_K rows with HQQ's sub-block mins."""
    return quantize_rows(x, qw, _q2_k_row, QK_K, Q2_K_BYTES)


@encoder_quantizer("hqq", "Q4_K")
@njit(**JIT_PARALLEL)
def hqq_q4_k(x, qw):
    """Q4_K rows with HQQ's sub-block mins."""
    return quantize_rows(x, qw, _q4_k_row, QK_K, Q4_K_BYTES)


@encoder_quantizer("hqq", "Q5_K")
@njit(**JIT_PARALLEL)
def hqq_q5_k(x, qw):
    """Q5_K rows with HQQ's sub-block mins."""
    return quantize_rows(x, qw, _q5_k_row, QK_K, Q5_K_BYTES)
