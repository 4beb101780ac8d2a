"""The inspector's HQQ comparison schemes: statistics of HQQ's native format beside a GGUF type."""

from __future__ import annotations

import numpy as np
import pytest

from quant_core.evaluate import sample_rows
from quant_core.hqq_native import hqq_roundtrip
from quant_core.hqq_preview import evaluate_scheme, scheme_problem
from quant_core.inspect import iter_inspect
from quant_core.model import open_model
from quant_core.stats import error_stats


@pytest.fixture(scope="module")
def model(small_gguf):
    return open_model(small_gguf)


def _matrix(model):
    return next(t for t in model.tensors if len(t.shape) == 2 and t.n_rows >= 100 and t.src_type == "F16")


@pytest.mark.parametrize("scheme,bits", [("HQQ4_G64", 4), ("hqq3_g64", 3), ("HQQ2_G64", 2)])
def test_inspector_compares_with_hqq_native(model, scheme: str, bits: int) -> None:
    t = _matrix(model)
    sampled, full = list(iter_inspect(model, t, "Q4_K", compare_type=scheme, sample=16))
    rows = sample_rows(t.n_rows, 16)
    x = model.rows_f32(t.name, rows)
    expected = error_stats(x, hqq_roundtrip(x, bits))
    assert sampled.compare_type == scheme and sampled.compare_stats.rmse == pytest.approx(expected.rmse, rel=1e-12)
    assert np.array_equal(sampled.compare_stats.hist_counts, expected.hist_counts)
    assert full.compare_stats.n == t.n_elements
    if bits == 2:  # 2.5 bits per weight against Q4_K's 4.5: clearly worse
        assert full.compare_stats.rmse > full.stats.rmse


def test_importance_weighting_and_shape_check(model) -> None:
    t = _matrix(model)
    rows = sample_rows(t.n_rows, 8)
    w = np.linspace(0.1, 2.0, t.n_per_row).astype(np.float32)
    stats = evaluate_scheme(model, t, "HQQ4_G64", rows, w)
    x = model.rows_f32(t.name, rows)
    assert stats.weighted_mse == pytest.approx(error_stats(x, hqq_roundtrip(x, 4), w).weighted_mse, rel=1e-12)
    assert scheme_problem(t) is None
    odd = type(t)(t.name, (96, 4), t.src_type, 0, 0, None, t.category)
    assert "not a multiple of HQQ's group of 64" in scheme_problem(odd)
