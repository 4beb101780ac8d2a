"""make_qx_quants / make_q3_quants against a plain sequential transcription of ggml's loops,
plus Q3_K / Q6_K on extreme inputs (overflowing scales, denormals, zero importance)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from quant_core import quantize
from quant_core.kernels._kq_symmetric import make_q3_quants, make_qx_quants, qx_work

F = np.float32


def _nearest_int(f: np.float32) -> int:
    bits = int(np.array(F(f) + F(12582912.0), dtype=np.float32).view(np.uint32))
    return (bits & 0x007FFFFF) - 0x00400000


def _weight(rmse_type: int, v: np.float32) -> np.float32:
    if rmse_type == 1:
        return v * v
    if rmse_type == 2:
        return F(1.0)
    if rmse_type == 3:
        return np.abs(v)
    return np.sqrt(np.abs(v))


def _reference_qx(x: np.ndarray, nmax: int, rmse_type: int, qw: np.ndarray | None) -> tuple[np.float32, np.ndarray]:
    """One candidate after the other, as ggml writes it (slow, obviously sequential)."""
    n = x.shape[0]
    amax, vmax = F(0.0), F(0.0)
    for v in x:
        if np.abs(v) > amax:
            amax, vmax = np.abs(v), v
    L = np.zeros(n, dtype=np.int64)
    if amax < F(1e-15):
        return F(0.0), L

    def codes(iscale: np.float32) -> list[int]:
        return [max(-nmax, min(nmax - 1, _nearest_int(iscale * v))) for v in x]

    def sums(ls: list[int]) -> tuple[np.float32, np.float32]:
        sumlx, suml2 = F(0.0), F(0.0)
        for i, v in enumerate(x):
            w = qw[i] if qw is not None else _weight(abs(rmse_type), v)
            sumlx += w * v * F(ls[i])
            suml2 += w * F(ls[i]) * F(ls[i])
        return sumlx, suml2

    iscale = F(-nmax) / vmax
    ls = codes(iscale)
    L[:] = np.array(ls) + nmax
    if rmse_type == 0:
        return F(1.0) / iscale, L
    sumlx, suml2 = sums(ls)
    scale = sumlx / suml2 if suml2 != 0 else F(0.0)
    if rmse_type < 0:
        return (F(0.5) * (scale + F(1.0) / iscale) if suml2 > 0 else F(1.0) / iscale), L
    best = scale * sumlx
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(F(nmax) + F(0.1) * F(step)) / vmax
        ls = codes(iscale)
        sumlx, suml2 = sums(ls)
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            L[:] = np.array(ls) + nmax
            scale = sumlx / suml2
            best = scale * sumlx
    return scale, L


def _groups(n: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.normal(0.0, 0.02, size=(count, n))
    g[::5] = rng.laplace(0.0, 1.0, size=g[::5].shape)
    g[1::7] = np.round(rng.normal(0.0, 3.0, size=g[1::7].shape))  # exact ties
    g[2::11] = 0.0
    return g.astype(np.float32)


@pytest.mark.parametrize(
    "n,nmax,rmse_type,weighted",
    [(32, 8, 1, True), (32, 16, 1, True), (16, 32, 1, False), (16, 4, 1, True), (16, 32, 1, True),
     (32, 8, 0, False), (16, 4, 2, False), (16, 4, 3, False), (16, 4, 4, False), (32, 8, -1, True)],
)
def test_make_qx_quants_matches_sequential_reference(n: int, nmax: int, rmse_type: int, weighted: bool) -> None:
    groups = _groups(n, 40, seed=n * 100 + nmax)
    qws = np.random.default_rng(1).gamma(2.0, 0.5, size=groups.shape).astype(np.float32)
    qws[3] = 0.0
    row = groups.ravel()
    qrow = qws.ravel() if weighted else np.zeros(0, dtype=np.float32)
    L = np.zeros(row.shape[0], dtype=np.int8)
    work = qx_work()
    for g in range(groups.shape[0]):
        got = make_qx_quants(n, nmax, row, g * n, L, g * n, rmse_type, qrow, g * n, work)
        want, want_L = _reference_qx(groups[g], nmax, rmse_type, qws[g] if weighted else None)
        assert F(got).tobytes() == F(want).tobytes(), (g, got, want)
        assert np.array_equal(L[g * n:(g + 1) * n], want_L), g


def test_make_q3_quants_without_rmse_is_plain_rounding() -> None:
    x = _groups(16, 1, seed=3)[0]
    L = np.zeros(16, dtype=np.int8)
    scale = make_q3_quants(16, 4, x, 0, L, 0, False)
    amax_i = int(np.argmax(np.abs(x)))
    iscale = F(-4) / x[amax_i]
    assert F(scale).tobytes() == (F(1.0) / iscale).tobytes()
    assert L[amax_i] == 0 and L.min() >= 0 and L.max() <= 7


def _extreme_rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    rows = []
    for scale in (1e-30, 1e-7, 1e10, 1e20, 1e36):
        r = rng.normal(0, 1, 512) * scale
        r[rng.integers(0, 512, 6)] *= 1e4
        rows.append(r)
    rows.append(rng.normal(0, 1, 512) * 1e-40)
    x = np.clip(np.array(rows), -3.4e38, 3.4e38).astype(np.float32)
    qw = np.where(rng.random(512) < 0.3, 0, rng.gamma(2, 0.5, 512)).astype(np.float32)
    return x, qw


# sha256 of the bytes of the scalar C reference (ggml's loops, gcc -O3, x86-64) on _extreme_rows:
# scales overflow to inf there, so C divides by +-0 and gets inf/NaN where numba would raise.
EXTREME_SHA256 = {
    ("Q6_K", False): "2c118777c3b990faa378f55748b8f359ca7da3aa34588050b8fc98191e1178a2",
    ("Q6_K", True): "a4512ae35575a0aa9add0bb1cc7ca358bc0badf15468d1069ba7636f7e9d274c",
    ("Q3_K", False): "16b34f92704ff1d7a7db6369da87f040ee53f8f1895df4c95c37dd702952637e",
    ("Q3_K", True): "636f4bb05ae129464746da1a476a677776bcaa5564258f803368d3e29d51828c",
}


@pytest.mark.parametrize("type_name,with_imatrix", sorted(EXTREME_SHA256))
def test_extreme_inputs_match_c_reference(type_name: str, with_imatrix: bool) -> None:
    x, qw = _extreme_rows()
    got = quantize(x, type_name, imatrix=qw if with_imatrix else None)
    assert hashlib.sha256(got.tobytes()).hexdigest() == EXTREME_SHA256[(type_name, with_imatrix)]
