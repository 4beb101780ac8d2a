"""Error statistics against plain float64 numpy formulas."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from quant_core import ImatrixError, NonFiniteError, ShapeError
from quant_core.stats import ErrorStats, StatsAccumulator, error_stats, weight_histogram

RTOL = 1e-12


def _pair(rows: int, cols: int, noise: float = 1e-3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)
    x_hat = (x + rng.normal(0.0, noise, size=x.shape)).astype(np.float32)
    return x, x_hat


def _reference(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    x64, h64 = x.astype(np.float64), x_hat.astype(np.float64)
    e = x64 - h64
    se2, sx2, sh2 = (e * e).sum(), (x64 * x64).sum(), (h64 * h64).sum()
    return {
        "rmse": math.sqrt(se2 / x.size),
        "rel_rmse": math.sqrt(se2 / sx2),
        "max_abs": float(np.abs(e).max()),
        "snr_db": 10.0 * math.log10(sx2 / se2),
        "cosine": float((x64 * h64).sum() / math.sqrt(sx2 * sh2)),
    }


def _assert_same(a: ErrorStats, b: ErrorStats) -> None:
    for field in ("n", "rmse", "rel_rmse", "max_abs", "snr_db", "cosine", "weighted_mse"):
        assert getattr(a, field) == getattr(b, field), field
    assert np.array_equal(a.hist_counts, b.hist_counts)
    assert np.array_equal(a.hist_edges, b.hist_edges)


@pytest.mark.parametrize("shape", [(1, 7), (33, 256), (300, 64)])
def test_matches_numpy_formulas(shape: tuple[int, int]) -> None:
    x, x_hat = _pair(*shape)
    got = error_stats(x, x_hat)
    want = _reference(x, x_hat)
    assert got.n == x.size
    assert got.max_abs == want["max_abs"]  # a max of exact float64 differences
    for key in ("rmse", "rel_rmse", "snr_db", "cosine"):
        assert getattr(got, key) == pytest.approx(want[key], rel=RTOL), key
    assert got.weighted_mse is None


def test_histogram_counts_every_error_in_its_bin() -> None:
    x, x_hat = _pair(200, 96, seed=3)
    got = error_stats(x, x_hat, bins=64)
    e = x.astype(np.float64) - x_hat
    edges = got.hist_edges
    assert got.hist_counts.dtype == np.int64 and edges.dtype == np.float64
    assert len(edges) == 65 and got.hist_counts.sum() == x.size
    assert np.array_equal(edges, -edges[::-1])  # symmetric around 0
    radius = edges[-1]
    assert radius / 2 <= got.max_abs < radius  # the data spans 1/2 .. all of the bins
    assert math.log2(radius).is_integer()
    assert np.array_equal(got.hist_counts, np.histogram(e, bins=edges)[0])


def test_histogram_range_grows_exactly_whatever_the_order() -> None:
    small, small_hat = _pair(20, 64, noise=1e-6, seed=1)
    big, big_hat = _pair(20, 64, noise=10.0, seed=2)
    x, x_hat = np.vstack([small, big]), np.vstack([small_hat, big_hat])
    e = x.astype(np.float64) - x_hat
    forward, backward = StatsAccumulator(), StatsAccumulator()
    forward.add(small, small_hat)
    forward.add(big, big_hat)
    backward.add(big, big_hat)
    backward.add(small, small_hat)
    for acc in (forward, backward):
        res = acc.result()
        assert np.array_equal(res.hist_counts, np.histogram(e, bins=res.hist_edges)[0])
        assert res.hist_edges[-1] / 2 <= res.max_abs < res.hist_edges[-1]


def test_chunks_added_in_row_order_equal_the_whole_bit_for_bit() -> None:
    x, x_hat = _pair(157, 128, seed=4)
    w = np.random.default_rng(5).gamma(2.0, 0.5, size=128).astype(np.float32)
    acc = StatsAccumulator(imatrix=w)
    for start, stop in [(0, 1), (1, 1), (1, 40), (40, 41), (41, 157)]:
        acc.add(x[start:stop], x_hat[start:stop])
    _assert_same(acc.result(), error_stats(x, x_hat, imatrix=w))


def test_thread_count_does_not_change_the_result() -> None:
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two numba threads")
    x, x_hat = _pair(203, 64, seed=6)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = error_stats(x, x_hat)
        numba.set_num_threads(2)
        two = error_stats(x, x_hat)
    finally:
        numba.set_num_threads(previous)
    _assert_same(one, two)


def test_merged_accumulators_equal_the_whole() -> None:
    x, x_hat = _pair(90, 64, seed=7)
    first, second = StatsAccumulator(), StatsAccumulator()
    first.add(x[:50], x_hat[:50])
    second.add(x[50:], x_hat[50:])
    first.merge(second)
    got, want = first.result(), error_stats(x, x_hat)
    assert got.n == want.n and got.max_abs == want.max_abs
    assert np.array_equal(got.hist_counts, want.hist_counts)
    assert np.array_equal(got.hist_edges, want.hist_edges)
    for key in ("rmse", "rel_rmse", "snr_db", "cosine"):
        assert getattr(got, key) == pytest.approx(getattr(want, key), rel=RTOL), key


def test_imatrix_weighted_mse() -> None:
    x, x_hat = _pair(40, 32, seed=8)
    w = np.random.default_rng(9).gamma(2.0, 0.5, size=32).astype(np.float32)
    e = x.astype(np.float64) - x_hat
    w64 = w.astype(np.float64)
    want = (w64 * e * e).sum() / (x.shape[0] * w64.sum())
    assert error_stats(x, x_hat, imatrix=w).weighted_mse == pytest.approx(want, rel=RTOL)
    # all the weight on one column: the mean squared error of that column
    one_hot = np.zeros(32, dtype=np.float32)
    one_hot[5] = 3.0
    column_mse = float((e[:, 5] ** 2).mean())
    assert error_stats(x, x_hat, imatrix=one_hot).weighted_mse == pytest.approx(column_mse, rel=RTOL)
    assert math.isnan(error_stats(x, x_hat, imatrix=np.zeros(32)).weighted_mse)


def test_bad_imatrix_is_rejected() -> None:
    x, x_hat = _pair(4, 32)
    with pytest.raises(ShapeError, match="importance matrix has 32"):
        error_stats(x[:, :16], x_hat[:, :16], imatrix=np.ones(32))
    with pytest.raises(ImatrixError, match="non-finite"):
        error_stats(x, x_hat, imatrix=np.full(32, np.inf))


def test_identical_arrays() -> None:
    x, _ = _pair(8, 64)
    got = error_stats(x, x.copy())
    assert (got.rmse, got.rel_rmse, got.max_abs) == (0.0, 0.0, 0.0)
    assert got.snr_db == math.inf
    assert got.cosine == pytest.approx(1.0, abs=1e-15)
    assert got.hist_counts[64] == x.size  # everything in the bin [0, width)
    assert (got.hist_edges[0], got.hist_edges[-1]) == (-1.0, 1.0)


def test_all_zero_x() -> None:
    zeros = np.zeros((3, 32), dtype=np.float32)
    exact = error_stats(zeros, zeros)
    assert (exact.rel_rmse, exact.snr_db, exact.cosine) == (0.0, math.inf, 1.0)
    off = zeros.copy()
    off[1, 2] = 0.5
    wrong = error_stats(zeros, off)
    assert (wrong.rel_rmse, wrong.snr_db, wrong.cosine) == (math.inf, -math.inf, 0.0)
    assert wrong.max_abs == 0.5 and wrong.rmse == pytest.approx(0.5 / math.sqrt(96), rel=RTOL)
    assert wrong.hist_counts.sum() == 96 and wrong.hist_edges[-1] == 1.0


def test_non_finite_values_raise_and_leave_the_accumulator_unchanged() -> None:
    x, x_hat = _pair(10, 32)
    acc = StatsAccumulator()
    acc.add(x[:5], x_hat[:5])
    bad = x_hat[5:].copy()
    bad[2, 7] = np.nan
    with pytest.raises(NonFiniteError, match="row 7"):
        acc.add(x[5:], bad)
    _assert_same(acc.result(), error_stats(x[:5], x_hat[:5]))
    bad[2, 7] = np.inf
    with pytest.raises(NonFiniteError):
        error_stats(x[5:], bad)


def test_shape_errors() -> None:
    x, x_hat = _pair(4, 32)
    with pytest.raises(ShapeError, match="x_hat has shape"):
        error_stats(x, x_hat[:, :16])
    with pytest.raises(ShapeError, match="no elements"):
        error_stats(x[:0], x_hat[:0])
    acc = StatsAccumulator()
    acc.add(x, x_hat)
    with pytest.raises(ShapeError, match="earlier rows have 32"):
        acc.add(x[:, :16], x_hat[:, :16])
    with pytest.raises(ValueError, match="power of two"):
        error_stats(x, x_hat, bins=100)


def test_read_only_and_float64_inputs() -> None:
    x, x_hat = _pair(16, 32, seed=11)
    ro = x.copy()
    ro.flags.writeable = False
    _assert_same(error_stats(ro, x_hat), error_stats(x, x_hat))
    _assert_same(error_stats(x.astype(np.float64), x_hat), error_stats(x, x_hat))
    assert error_stats(x[0], x_hat[0]).n == 32  # 1-D is one row


def test_weight_histogram() -> None:
    x, _ = _pair(64, 96, seed=12)
    x[3, 4] = 0.3  # an outlier sets the range
    counts, edges = weight_histogram(x, bins=256)
    assert counts.sum() == x.size and len(edges) == 257
    assert edges[-1] == 0.5 and np.array_equal(edges, -edges[::-1])
    assert np.array_equal(counts, np.histogram(x.astype(np.float64), bins=edges)[0])
    zero_counts, zero_edges = weight_histogram(np.zeros((2, 8), dtype=np.float32), bins=8)
    assert zero_counts.tolist() == [0, 0, 0, 0, 16, 0, 0, 0] and zero_edges[-1] == 1.0
    x[1, 1] = np.nan
    with pytest.raises(NonFiniteError, match="row 1"):
        weight_histogram(x)
