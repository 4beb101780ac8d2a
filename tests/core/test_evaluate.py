"""evaluate: row sampling, per-tensor statistics equal to a direct computation, chunking, errors."""

from __future__ import annotations

import numpy as np
import pytest

from quant_core import evaluate
from quant_core.errors import QuantError
from quant_core.evaluate import evaluate_tensor, iter_evaluate, sample_rows
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quantize import dequantize, quantize


@pytest.fixture(scope="module")
def model(small_gguf):
    return open_model(small_gguf)


@pytest.fixture(scope="module")
def plan(model):
    return build_plan(model, QuantOptions(preset="Q4_K_M"))


def _direct(model, name: str, type_name: str, rows: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    """The statistics computed plainly in numpy (float64) from the same quantize/dequantize round trip."""
    x = model.rows_f32(name, rows)
    n = x.shape[1]
    y = dequantize(quantize(x, type_name, imatrix=w), type_name, n) if type_name != model.tensor(name).src_type else x
    x64, e = x.astype(np.float64), x.astype(np.float64) - y.astype(np.float64)
    out = {
        "rmse": float(np.sqrt(np.mean(e**2))),
        "rel_rmse": float(np.linalg.norm(e) / np.linalg.norm(x64)),
        "max_abs": float(np.abs(e).max()),
    }
    if w is not None:
        out["weighted_mse"] = float((e**2 * w.astype(np.float64)).sum() / (x.shape[0] * w.astype(np.float64).sum()))
    return out


@pytest.mark.parametrize(
    ("n_rows", "max_rows"), [(10, None), (10, 0), (10, 10), (10, 50), (1000, 64), (65, 64), (7, 3)]
)
def test_sample_rows_are_evenly_spread_and_include_both_ends(n_rows: int, max_rows: int | None) -> None:
    rows = sample_rows(n_rows, max_rows)
    if not max_rows or max_rows >= n_rows:
        assert rows.tolist() == list(range(n_rows))
        return
    assert len(rows) == max_rows and rows[0] == 0 and rows[-1] == n_rows - 1
    assert np.all(np.diff(rows) > 0)
    gaps = np.diff(rows)
    assert gaps.max() - gaps.min() <= 1  # even spacing


def test_each_tensor_matches_a_direct_computation(model, plan) -> None:
    names = [tp.name for tp in plan.tensors if tp.quantizable][:4]
    results = list(iter_evaluate(model, plan, names, max_rows=16))
    assert [r.name for r in results] == names
    for r in results:
        tp = plan.tensor(r.name)
        rows = sample_rows(tp.source.n_rows, 16)
        assert r.type == tp.type and r.rows_used == len(rows) and r.n_rows == tp.source.n_rows
        assert r.sampled == (len(rows) < tp.source.n_rows)
        want = _direct(model, r.name, r.type, rows)
        assert r.stats.n == len(rows) * tp.source.n_per_row
        for key, value in want.items():
            assert getattr(r.stats, key) == pytest.approx(value, rel=1e-9), key
        assert r.stats.weighted_mse is None


def test_all_rows_when_max_rows_is_none(model, plan) -> None:
    name = next(tp.name for tp in plan.tensors if tp.quantizable)
    (r,) = iter_evaluate(model, plan, [name], max_rows=None)
    assert not r.sampled and r.rows_used == r.n_rows
    assert r.stats.rmse == pytest.approx(_direct(model, name, r.type, np.arange(r.n_rows))["rmse"], rel=1e-9)


def test_types_override_the_planned_type(model, plan) -> None:
    name = next(tp.name for tp in plan.tensors if tp.quantizable and tp.type != "Q8_0")
    (planned,) = iter_evaluate(model, plan, [name], max_rows=8)
    (q8,) = iter_evaluate(model, plan, [name], max_rows=8, types={name: "Q8_0"})
    assert q8.type == "Q8_0" and planned.type == plan.tensor(name).type
    assert q8.stats.rmse == pytest.approx(_direct(model, name, "Q8_0", sample_rows(q8.n_rows, 8))["rmse"], rel=1e-9)
    assert q8.stats.rmse < planned.stats.rmse


def test_a_tensor_kept_in_its_source_type_has_no_error(model, plan) -> None:
    tp = next(tp for tp in plan.tensors if tp.type == tp.source.src_type)
    (r,) = iter_evaluate(model, plan, [tp.name], max_rows=None)
    assert r.stats.rmse == 0 and r.stats.max_abs == 0 and r.stats.snr_db == float("inf")


def test_chunking_does_not_change_the_result(model, plan, monkeypatch) -> None:
    tp = next(tp for tp in plan.tensors if tp.quantizable and tp.source.n_rows >= 64)
    rows = np.arange(tp.source.n_rows)
    whole = evaluate_tensor(model, tp.source, tp.type, rows)
    monkeypatch.setattr(evaluate, "CHUNK_ELEMENTS", 3 * tp.source.n_per_row)  # 3 rows per chunk
    chunked = evaluate_tensor(model, tp.source, tp.type, rows)
    for key in ("rmse", "rel_rmse", "max_abs", "snr_db", "cosine"):
        assert getattr(chunked, key) == getattr(whole, key), key
    assert np.array_equal(chunked.hist_counts, whole.hist_counts)


def test_importance_weighted_error(model, plan) -> None:
    tp = next(tp for tp in plan.tensors if tp.quantizable and len(tp.source.shape) == 2)
    w = np.random.default_rng(3).gamma(2.0, 0.5, size=tp.source.n_per_row).astype(np.float32)
    rows = sample_rows(tp.source.n_rows, 8)
    stats = evaluate_tensor(model, tp.source, "Q4_K", rows, imatrix_values=w)
    want = _direct(model, tp.name, "Q4_K", rows, w)
    assert stats.weighted_mse == pytest.approx(want["weighted_mse"], rel=1e-9)
    assert stats.rmse == pytest.approx(want["rmse"], rel=1e-9)


def test_a_failure_names_the_tensor(model, plan) -> None:
    tp = next(tp for tp in plan.tensors if tp.quantizable and len(tp.source.shape) == 2)
    with pytest.raises(QuantError, match=f"^{tp.name}: ") as info:
        list(iter_evaluate(model, plan, [tp.name], max_rows=4, types={tp.name: "IQ2_XXS"}))  # needs an imatrix
    assert "\n" not in str(info.value)
