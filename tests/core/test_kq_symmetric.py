"""make_qx_quants / make_q3_quants (batched) against a plain sequential transcription of ggml's loops,
plus Q3_K / Q6_K on extreme inputs (overflowing scales, denormals, zero importance)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from quant_core import quantize
from quant_core.kernels._kq_symmetric import Q3_BATCH, make_q3_quants_batch, make_qx_quants, q3_scratch, qx_work

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
    [
        (32, 8, 1, True),
        (32, 16, 1, True),
        (16, 32, 1, False),
        (16, 4, 1, True),
        (16, 32, 1, True),
        (32, 8, 0, False),
        (16, 4, 2, False),
        (16, 4, 3, False),
        (16, 4, 4, False),
        (32, 8, -1, True),
    ],
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
        assert np.array_equal(L[g * n : (g + 1) * n], want_L), g


def _reference_q3(x: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """ggml's make_q3_quants(n, 4, x, L, do_rmse=true), one element after the other."""
    nmax = 4
    amax, vmax = F(0.0), F(0.0)
    for v in x:
        if np.abs(v) > amax:
            amax, vmax = np.abs(v), v
    if amax < F(1e-15):
        return F(0.0), np.zeros(x.shape[0], dtype=np.int64)
    iscale = F(-nmax) / vmax
    L = [max(-nmax, min(nmax - 1, _nearest_int(iscale * v))) for v in x]
    sumlx, suml2 = F(0.0), F(0.0)
    for v, l in zip(x, L):
        w = v * v
        sumlx += w * v * F(l)
        suml2 += w * F(l) * F(l)
    for _ in range(5):
        changed = 0
        for i, v in enumerate(x):
            w = v * v
            slx = sumlx - w * v * F(L[i])
            if slx > 0:
                sl2 = suml2 - w * F(L[i]) * F(L[i])
                new_l = max(-nmax, min(nmax - 1, _nearest_int(v * sl2 / slx)))
                if new_l != L[i]:
                    slx += w * v * F(new_l)
                    sl2 += w * F(new_l) * F(new_l)
                    if sl2 > 0 and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i], sumlx, suml2 = new_l, slx, sl2
                        changed += 1
        if not changed:
            break
    return (sumlx / suml2 if suml2 > 0 else F(0.0)), np.array(L) + nmax


@pytest.mark.parametrize("super_blocks", [Q3_BATCH, 1, Q3_BATCH - 1])
def test_make_q3_quants_batch_matches_sequential_reference(super_blocks: int) -> None:
    groups = _groups(16, 16 * super_blocks, seed=super_blocks)
    groups[5] = 1e-20  # below GROUP_MAX_EPS: codes and scale 0
    L = np.full(256 * super_blocks, 99, dtype=np.int8)
    scales = np.zeros(16 * super_blocks, dtype=np.float32)
    with np.errstate(all="ignore"):
        make_q3_quants_batch(groups.ravel(), 0, super_blocks, L, scales, q3_scratch())
        for g in range(groups.shape[0]):
            want, want_L = _reference_q3(groups[g])
            assert F(scales[g]).tobytes() == F(want).tobytes(), (g, scales[g], want)
            assert np.array_equal(L[16 * g : 16 * (g + 1)], want_L), g


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
