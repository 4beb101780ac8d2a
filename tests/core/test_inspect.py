"""inspect: a sampled answer then the full one, the comparison type, weight histogram and block levels."""

from __future__ import annotations

import numpy as np
import pytest

from quant_core.evaluate import evaluate_tensor, sample_rows
from quant_core.inspect import HIST_BINS, block_levels, iter_inspect
from quant_core.model import open_model
from quant_core.quantize import dequantize, quantize
from quant_core.stats import weight_histogram


@pytest.fixture(scope="module")
def model(small_gguf):
    return open_model(small_gguf)


def _matrix(model, min_rows: int):
    return next(t for t in model.tensors if len(t.shape) == 2 and t.n_rows >= min_rows and t.src_type == "F16")


def _same_stats(a, b) -> bool:
    keys = ("n", "rmse", "rel_rmse", "max_abs", "snr_db", "cosine")
    return all(getattr(a, k) == getattr(b, k) for k in keys) and np.array_equal(a.hist_counts, b.hist_counts)


def test_sampled_first_then_full(model) -> None:
    t = _matrix(model, 100)
    sampled, full = list(iter_inspect(model, t, "Q4_K", sample=16))
    assert (sampled.rows_used, sampled.full) == (16, False)
    assert (full.rows_used, full.full) == (t.n_rows, True)
    assert _same_stats(sampled.stats, evaluate_tensor(model, t, "Q4_K", sample_rows(t.n_rows, 16)))
    assert _same_stats(full.stats, evaluate_tensor(model, t, "Q4_K", np.arange(t.n_rows)))
    # the weight histogram and the levels come from the sample in both passes
    assert np.array_equal(sampled.weight_counts, full.weight_counts)
    assert np.array_equal(sampled.levels, full.levels)


def test_a_small_tensor_is_inspected_once_in_full(model) -> None:
    t = _matrix(model, 1)
    (only,) = iter_inspect(model, t, "Q8_0", sample=t.n_rows)
    assert only.full and only.rows_used == t.n_rows


@pytest.mark.parametrize(("compare", "expected"), [("Q8_0", "Q8_0"), ("Q4_K", None), (None, None)])
def test_comparison_type(model, compare: str | None, expected: str | None) -> None:
    t = _matrix(model, 100)
    first = next(iter_inspect(model, t, "Q4_K", compare_type=compare, sample=16))
    if expected is None:
        assert first.compare_stats is None
        return
    rows = sample_rows(t.n_rows, 16)
    assert first.compare_type == expected
    assert _same_stats(first.compare_stats, evaluate_tensor(model, t, expected, rows))
    assert first.compare_stats.rmse < first.stats.rmse


def test_weight_histogram_counts_the_sampled_weights(model) -> None:
    t = _matrix(model, 100)
    first = next(iter_inspect(model, t, "Q4_K", sample=16))
    x = model.rows_f32(t.name, sample_rows(t.n_rows, 16))
    assert len(first.weight_counts) == HIST_BINS and first.weight_counts.sum() == x.size
    want_counts, want_edges = weight_histogram(x, HIST_BINS)
    assert np.array_equal(first.weight_counts, want_counts) and np.array_equal(first.weight_edges, want_edges)
    assert first.weight_edges[0] <= x.min() and x.max() <= first.weight_edges[-1]


@pytest.mark.parametrize(("type_name", "group", "max_levels"), [("Q4_0", 32, 16), ("Q6_K", 16, 64), ("Q8_0", 32, 256)])
def test_block_levels_are_the_dequantized_values_of_the_largest_weights_group(
    model, type_name: str, group: int, max_levels: int
) -> None:
    t = _matrix(model, 100)
    rows = sample_rows(t.n_rows, 16)
    levels = block_levels(model, t, type_name, rows)
    x = model.rows_f32(t.name, rows)
    r, c = np.unravel_index(int(np.argmax(np.abs(x))), x.shape)
    start = c - c % group
    y = dequantize(quantize(x[r : r + 1], type_name), type_name, t.n_per_row)[0, start : start + group]
    assert np.array_equal(levels, np.unique(y))
    assert 1 < len(levels) <= max_levels
    assert np.abs(levels).max() == pytest.approx(abs(x[r, c]), rel=0.25)


def test_block_levels_of_the_source_type_are_the_weights(model) -> None:
    t = _matrix(model, 1)
    rows = sample_rows(t.n_rows, 16)
    levels = block_levels(model, t, t.src_type, rows)
    x = model.rows_f32(t.name, rows)
    r, c = np.unravel_index(int(np.argmax(np.abs(x))), x.shape)
    assert levels.tolist() == [x[r, c]]  # a float type's scale group is one element
