"""IQ2_XXS, IQ2_XS and IQ2_S: groups of 8 magnitudes from an E8-like lattice grid, plus signs.

ggml's ``quantize_row_iq2_{xxs,xs,s}_impl``: per sub-block (32 elements for IQ2_XXS, 16 for
the others) the signs are split off, a few inverse scales are tried, each 8-group is rounded to
codes 0..2 (levels 1, 3, 5) and, when that point is not on the grid, replaced by its best grid
neighbour; the scale maximising (Σwqx)²/Σwq² wins and off-grid groups are requantized with it.
IQ2_XXS/IQ2_XS store 7 sign bits per group and make the 8th implicit by flipping the sign of
the least important element when the count of negatives is odd. The super-block scale is
d = max_scale/31 (IQ2_S stores fp16(0.9875·d)); sub-block scales are 4-bit.

The grids and neighbour tables come from ``_iq2_grids`` (built on first use) and are passed
to the numba kernels as arrays; the registered entry points are thin Python wrappers. The
search itself, shared by the three types, is in ``_iq2_search``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..qtypes import QK_K, QTYPES
from ._common import (
    F32,
    JIT,
    JIT_PARALLEL,
    load_fp16,
    load_u16,
    load_u32,
    store_fp16,
    store_u16,
    store_u32,
)
from ._iq2_grids import iq2_tables, iq2_values
from ._iq2_search import grid_index, prepare, requantize, scratch, search, sigma2_of, sub_scale
from ._kq_affine import make_qp_quants
from ._rows import checked_rows, quantize_rows_with
from .registry import dequantizer, quantizer

XXS_BYTES = QTYPES["IQ2_XXS"].type_size
XS_BYTES = QTYPES["IQ2_XS"].type_size
S_BYTES = QTYPES["IQ2_S"].type_size
GROUP_MAX_EPS = F32(1e-15)
GROUP_MAX_EPS_IQ2_S = F32(1e-8)
SKIPPED = F32(-1.0)  # sub-block scale marker: ggml skipped the block (its codes and signs stay 0)


@njit(inline="always", **JIT)
def _checked(scale, buf):
    """ggml asserts scale >= 0 for every block it did not skip; a NaN marks the row failed."""
    if not scale >= F32(0.0):
        buf[8][0] = 1
    return scale


@njit(inline="always", **JIT)
def _xxs_block(x, xb, qw, sigma2, signs, Lq, buf, tabs):
    """Scale of the IQ2_XXS 32-block at ``xb`` (SKIPPED if degenerate); fills L and the signs."""
    if prepare(x, xb, 32, qw, sigma2, True, signs, buf) < GROUP_MAX_EPS:
        return SKIPPED
    scale = make_qp_quants(buf[2], buf[0], Lq, 4)
    eff_max = scale * F32(3.0)
    if eff_max <= F32(0.0):
        return SKIPPED
    scale = search(buf, 32, scale, eff_max, 6, tabs)
    if scale > F32(0.0):
        buf[5][:] = False  # IQ2_XXS requantizes every group
        scale = requantize(buf, 32, scale, tabs)
    if scale < F32(0.0):
        scale = -scale
        for k in range(4):
            signs[k] = ~signs[k] & 127
    return _checked(scale, buf)


@njit(inline="always", **JIT)
def _block16(x, xb, qw, sigma2, parity, eps, signs, buf, tabs):
    """Scale of an IQ2_XS (parity) / IQ2_S 16-block at ``xb`` (SKIPPED if degenerate)."""
    buf[3][:] = 0
    vmax = prepare(x, xb, 16, qw, sigma2, parity, signs, buf)
    if vmax < eps:
        return SKIPPED
    buf[5][:] = True
    scale = search(buf, 16, vmax / F32(5.0), vmax, 9, tabs)
    if not (buf[5][0] and buf[5][1]) and scale > F32(0.0):
        scale = requantize(buf, 16, scale, tabs)
    if scale < F32(0.0):
        scale = -scale
        for k in range(2):
            signs[k] = ~signs[k] & (127 if parity else 255)
    return _checked(scale, buf)


@njit(**JIT)
def _xxs_row(x, qw, out, tabs):
    buf = scratch(32)
    Lq = np.zeros(32, dtype=np.uint8)
    signs = np.zeros(4, dtype=np.int64)
    scales = np.zeros(8, dtype=np.float32)
    q2 = np.zeros(16, dtype=np.int64)
    for ibl in range(x.shape[0] // QK_K):
        base = ibl * QK_K
        o = ibl * XXS_BYTES
        sigma2 = sigma2_of(x, base, False)
        q2[:] = 0
        max_scale = F32(0.0)
        for ib in range(8):
            scale = _xxs_block(x, base + 32 * ib, qw, sigma2, signs, Lq, buf, tabs)
            scales[ib] = F32(0.0) if scale == SKIPPED else scale
            if scale == SKIPPED:
                continue
            for k in range(4):
                q2[2 * ib] |= grid_index(buf[3], k, tabs[2]) << (8 * k)
                q2[2 * ib + 1] |= signs[k] << (7 * k)
            max_scale = max_scale if max_scale > scale else scale
        if max_scale == F32(0.0):
            out[o : o + XXS_BYTES] = 0
            continue
        d = max_scale / F32(31.0)
        store_fp16(out, o, d)
        for ib in range(8):
            q2[2 * ib + 1] |= sub_scale(d, scales[ib]) << 28
        for j in range(16):
            store_u32(out, o + 2 + 4 * j, q2[j])
    return buf[8][0] != 0


@njit(**JIT)
def _xs_or_s_row(x, qw, out, tabs, is_s):
    """One row of IQ2_XS (74-byte blocks) or, with ``is_s``, IQ2_S (82-byte blocks)."""
    buf = scratch(16)
    signs = np.zeros(2, dtype=np.int64)
    scales = np.zeros(16, dtype=np.float32)
    block = S_BYTES if is_s else XS_BYTES
    eps = GROUP_MAX_EPS_IQ2_S if is_s else GROUP_MAX_EPS
    for ibl in range(x.shape[0] // QK_K):
        base = ibl * QK_K
        o = ibl * block
        out[o : o + block] = 0
        sigma2 = sigma2_of(x, base, is_s)
        max_scale = F32(0.0)
        for ib in range(16):
            scale = _block16(x, base + 16 * ib, qw, sigma2, not is_s, eps, signs, buf, tabs)
            scales[ib] = F32(0.0) if scale == SKIPPED else scale
            if scale == SKIPPED:
                continue
            for k in range(2):
                g = grid_index(buf[3], k, tabs[2])
                i8 = 2 * ib + k
                if is_s:
                    out[o + 2 + i8] = np.uint8(g & 255)
                    out[o + 66 + i8 // 4] |= np.uint8((g >> 8) << (2 * (i8 % 4)))
                    out[o + 34 + i8] = np.uint8(signs[k])
                else:
                    store_u16(out, o + 2 + 2 * i8, g | (signs[k] << 9))
            max_scale = max_scale if max_scale > scale else scale
        if max_scale == F32(0.0):
            if not is_s:  # IQ2_S keeps what it wrote (ggml does not clear it)
                out[o : o + block] = 0
            continue
        d = max_scale / F32(31.0)
        store_fp16(out, o, d * F32(0.9875) if is_s else d)
        for ib in range(16):
            out[o + block - 8 + ib // 2] |= np.uint8(sub_scale(d, scales[ib]) << (4 * (ib % 2)))
    return buf[8][0] != 0


@njit(**JIT)
def _xs_row(x, qw, out, tabs):
    return _xs_or_s_row(x, qw, out, tabs, False)


@njit(**JIT)
def _s_row(x, qw, out, tabs):
    return _xs_or_s_row(x, qw, out, tabs, True)


@njit(**JIT_PARALLEL)
def _quantize_iq2_xxs(x, qw, tabs):
    return quantize_rows_with(x, qw, _xxs_row, QK_K, XXS_BYTES, tabs)


@njit(**JIT_PARALLEL)
def _quantize_iq2_xs(x, qw, tabs):
    return quantize_rows_with(x, qw, _xs_row, QK_K, XS_BYTES, tabs)


@njit(**JIT_PARALLEL)
def _quantize_iq2_s(x, qw, tabs):
    return quantize_rows_with(x, qw, _s_row, QK_K, S_BYTES, tabs)


def _tables(type_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = iq2_tables(type_name)
    return t.slots, t.codes, t.kmap, t.neighbours


@quantizer("IQ2_XXS")
def quantize_iq2_xxs(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ2_XXS rows (66 bytes per 256 values); ``qw`` must be an imatrix (the wrapper checks)."""
    return checked_rows("IQ2_XXS", *_quantize_iq2_xxs(x, qw, _tables("IQ2_XXS")))


@quantizer("IQ2_XS")
def quantize_iq2_xs(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ2_XS rows (74 bytes per 256 values); ``qw`` must be an imatrix (the wrapper checks)."""
    return checked_rows("IQ2_XS", *_quantize_iq2_xs(x, qw, _tables("IQ2_XS")))


@quantizer("IQ2_S")
def quantize_iq2_s(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """IQ2_S rows (82 bytes per 256 values), with or without an imatrix (``qw`` of length 0)."""
    return checked_rows("IQ2_S", *_quantize_iq2_s(x, qw, _tables("IQ2_S")))


@njit(inline="always", **JIT)
def _signed(value, signs, j):
    """value·(−1 if bit j of the sign byte is set else +1), multiplied as ggml and gguf-py do."""
    return value * (F32(-1.0) if (signs >> j) & 1 else F32(1.0))


@njit(inline="always", **JIT)
def _parity_signs(s7):
    """ksigns_iq2xs: the 7 stored sign bits plus an 8th that makes the count even."""
    p = 0
    for j in range(7):
        p ^= (s7 >> j) & 1
    return s7 | (p << 7)


@njit(inline="always", **JIT)
def _group_out(y, pos, db, values, g, signs):
    for j in range(8):
        y[pos + j] = _signed(db * values[g, j], signs, j)


@njit(**JIT_PARALLEL)
def _dequantize_rows(q, n_per_row, values, kind):
    """Decode rows: kind 0 = IQ2_XXS, 1 = IQ2_XS, 2 = IQ2_S."""
    out = np.empty((q.shape[0], n_per_row), dtype=np.float32)
    block = XXS_BYTES if kind == 0 else XS_BYTES if kind == 1 else S_BYTES
    for r in prange(q.shape[0]):
        row = q[r]
        y = out[r]
        for ibl in range(n_per_row // QK_K):
            o = ibl * block
            d = load_fp16(row, o)
            for ib32 in range(8):
                pos = ibl * QK_K + 32 * ib32
                if kind == 0:
                    aux0 = load_u32(row, o + 2 + 8 * ib32)
                    aux1 = load_u32(row, o + 6 + 8 * ib32)
                    db = d * (F32(0.5) + F32(aux1 >> 28)) * F32(0.25)
                    for l in range(4):
                        signs = _parity_signs((aux1 >> (7 * l)) & 127)
                        _group_out(y, pos + 8 * l, db, values, (aux0 >> (8 * l)) & 255, signs)
                    continue
                sc = row[o + (66 if kind == 1 else 74) + ib32]
                for l in range(4):
                    db = d * (F32(0.5) + F32((sc >> (4 * (l // 2))) & 15)) * F32(0.25)
                    if kind == 1:
                        v = load_u16(row, o + 2 + 8 * ib32 + 2 * l)
                        g, signs = v & 511, _parity_signs(v >> 9)
                    else:
                        qh = np.int64(row[o + 66 + ib32])
                        g = np.int64(row[o + 2 + 4 * ib32 + l]) | ((qh << (8 - 2 * l)) & 0x300)
                        signs = np.int64(row[o + 34 + 4 * ib32 + l])
                    _group_out(y, pos + 8 * l, db, values, g, signs)
    return out


@dequantizer("IQ2_XXS")
def dequantize_iq2_xxs(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """IQ2_XXS rows to float32, bit-identical to gguf-py."""
    return _dequantize_rows(q, n_per_row, iq2_values("IQ2_XXS"), 0)


@dequantizer("IQ2_XS")
def dequantize_iq2_xs(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """IQ2_XS rows to float32, bit-identical to gguf-py."""
    return _dequantize_rows(q, n_per_row, iq2_values("IQ2_XS"), 1)


@dequantizer("IQ2_S")
def dequantize_iq2_s(q: np.ndarray, n_per_row: int) -> np.ndarray:
    """IQ2_S rows to float32, bit-identical to gguf-py."""
    return _dequantize_rows(q, n_per_row, iq2_values("IQ2_S"), 2)
