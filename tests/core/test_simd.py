"""The vector-intrinsic block reductions and the streaming F32 copy agree with scalar code."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from quant_core import quantize
from quant_core.errors import NonFiniteError
from quant_core.kernels._simd import first_absmax, first_better, first_min_max
from quant_core.kernels.floats import copy_f32_checked


@njit(cache=False)
def _absmax_blocks(x, n):
    out = np.empty((x.shape[0] // n, 2), dtype=np.float32)
    for b in range(x.shape[0] // n):
        if n == 16:
            out[b] = first_absmax(x, b * n, 16)
        elif n == 32:
            out[b] = first_absmax(x, b * n, 32)
        else:
            out[b] = first_absmax(x, b * n, 256)
    return out


@njit(cache=False)
def _min_max_blocks(x):
    out = np.empty((x.shape[0] // 32, 2), dtype=np.float32)
    for b in range(x.shape[0] // 32):
        out[b] = first_min_max(x, b * 32, 32)
    return out


def _scalar_absmax(block: np.ndarray) -> tuple[float, float]:
    amax, vmax = np.float32(0), np.float32(0)
    for v in block:
        if abs(v) > amax:
            amax, vmax = abs(v), v
    return amax, vmax


def _scalar_min_max(block: np.ndarray) -> tuple[float, float]:
    fmax = np.finfo(np.float32).max
    vmin, vmax = np.float32(fmax), np.float32(-fmax)
    for v in block:
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
    return vmin, vmax


def _tricky_blocks(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    blocks = [
        rng.normal(size=(40, n)),
        rng.integers(-3, 4, size=(40, n)),  # many exact ties of magnitude, both signs
        rng.choice([0.0, -0.0], size=(20, n)),  # signed zeros only
        rng.choice([0.0, -0.0, 1e-45, -1e-45], size=(20, n)),
        rng.normal(size=(10, n)) * 1e-40,
        rng.choice([3.4e38, -3.4e38, 0.0], size=(10, n)),
    ]
    return np.concatenate(blocks).astype(np.float32)


def _same_bits(got: np.ndarray, want: list[tuple[float, float]]) -> bool:
    return np.array_equal(got.view(np.uint32), np.array(want, dtype=np.float32).view(np.uint32))


@pytest.mark.parametrize("n", [16, 32, 256])
def test_first_absmax_matches_ggml_loop(n: int) -> None:
    blocks = _tricky_blocks(n)
    got = _absmax_blocks(blocks.reshape(-1), n)
    assert _same_bits(got, [_scalar_absmax(b) for b in blocks])


def test_first_min_max_matches_ggml_loop() -> None:
    blocks = _tricky_blocks(32)
    got = _min_max_blocks(blocks.reshape(-1))
    assert _same_bits(got, [_scalar_min_max(b) for b in blocks])


@njit(cache=False)
def _accepted_by_first_better(sumqx, sumq2, n):
    """Positions ggml's one-by-one scan takes, found 16 candidates at a time."""
    taken = np.full(n, -1, dtype=np.int64)
    count = 0
    best = np.float32(-3.4028234663852886e38)
    pos = 0
    while pos < n:
        j = first_better(sumqx, sumq2, pos, best, 16)
        if j == 16:
            pos += 16
            continue
        t = pos + j
        best = (sumqx[t] / sumq2[t]) * sumqx[t]
        taken[count] = t
        count += 1
        pos = t + 1
    return taken[:count]


def _accepted_one_by_one(sumqx: np.ndarray, sumq2: np.ndarray, n: int) -> list[int]:
    taken = []
    best = np.float32(-3.4028234663852886e38)
    with np.errstate(all="ignore"):
        for t in range(n):
            if sumq2[t] > 0 and sumqx[t] * sumqx[t] > best * sumq2[t]:
                best = (sumqx[t] / sumq2[t]) * sumqx[t]
                taken.append(t)
    return taken


@pytest.mark.parametrize("seed", range(6))
def test_first_better_scan_matches_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    sumqx = rng.normal(size=n + 16).astype(np.float32)
    sumq2 = rng.normal(size=n + 16).astype(np.float32)
    sumqx[::7] = sumqx[3]  # exact ties
    sumq2[::7] = sumq2[3]
    sumq2[::11] = 0.0
    sumqx[n - 10] = np.inf  # then nothing beats it
    sumq2[n:] = 0.0  # padding never passes
    sumqx *= np.float32(np.linspace(0.5, 2.0, n + 16))  # scores that tend to grow
    want = _accepted_one_by_one(sumqx, sumq2, n)
    with np.errstate(all="ignore"):
        got = _accepted_by_first_better(sumqx, sumq2, n)
    assert got.tolist() == want


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 4096), (2, 70001), (70, 1000)])
def test_f32_copy_is_exact_and_checks(shape: tuple[int, int]) -> None:
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    x.flags.writeable = False
    out, finite = copy_f32_checked(x)
    assert finite and out.shape == (shape[0], 4 * shape[1])
    assert np.array_equal(out.view(np.float32), x)
    for flat in (0, x.size // 2, x.size - 1):  # vector part and scalar tail
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y.reshape(-1)[flat] = bad
            assert not copy_f32_checked(y)[1]


def test_f32_quantize_reports_the_first_bad_position() -> None:
    x = np.ones((4, 100), dtype=np.float32)
    x[2, 37] = np.inf
    x[3, 1] = np.nan
    with pytest.raises(NonFiniteError, match="row 2, column 37"):
        quantize(x, "F32")
