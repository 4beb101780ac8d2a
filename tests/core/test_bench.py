"""bench: the seeded inputs, one result per type, best-of-repeats rates, the ggml hook and imatrix handling."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from quant_core import bench
from quant_core.bench import bench_imatrix, bench_matrix, default_types, run_bench
from quant_core.errors import QuantError
from quant_core.kernels import QUANTIZERS
from quant_core.qtypes import QTYPES

ROWS, COLS = 4, 256
TICK = 0.001  # seconds per perf_counter() call of the fake clock


class FakeClock:
    """perf_counter() that advances TICK per call, plus whatever ``spend`` adds."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += TICK
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


class FakeGgml:
    """Stands in for ggml's quantizer: records its calls and takes a given time per call."""

    def __init__(self, clock: FakeClock, durations: list[float]) -> None:
        self.clock, self.durations, self.calls = clock, itertools.cycle(durations), []

    def __call__(self, name: str, x: np.ndarray, weights: np.ndarray | None) -> None:
        self.calls.append((name, x.shape, None if weights is None else weights.copy()))
        self.clock.spend(next(self.durations))


def test_inputs_are_seeded_and_plausible() -> None:
    x = bench_matrix(64, 512)
    assert x.dtype == np.float32 and x.shape == (64, 512)
    assert np.array_equal(x, bench_matrix(64, 512)) and not np.array_equal(x, bench_matrix(64, 512, seed=5))
    assert x.std() == pytest.approx(0.02, rel=0.05) and abs(x.mean()) < 0.002
    w = bench_imatrix(512)
    assert w.dtype == np.float32 and w.shape == (512,) and (w > 0).all()
    assert np.array_equal(w, bench_imatrix(512))


def test_default_types_are_every_quantizable_type_in_table_order() -> None:
    types = default_types()
    assert set(types) == set(QUANTIZERS) & set(QTYPES)
    assert types == [name for name in QTYPES if name in types]


def test_one_result_per_type_with_best_of_repeats_rates(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    ggml = FakeGgml(clock, [0.05, 0.02, 0.03])
    results = list(run_bench(["q4_0", "Q8_0"], rows=ROWS, cols=COLS, threads=1, repeats=3, ggml=ggml))
    assert [r.type_name for r in results] == ["Q4_0", "Q8_0"]
    melem = ROWS * COLS / 1e6
    for r in results:
        assert r.threads == 1
        assert r.quantize_melem_s == pytest.approx(melem / TICK)  # every timed call took one tick
        assert r.dequantize_melem_s == pytest.approx(melem / TICK)
        assert r.ggml_melem_s == pytest.approx(melem / (TICK + 0.02))  # best of the three
        assert r.warmup_s == pytest.approx(TICK)
    assert [c[0] for c in ggml.calls] == ["Q4_0"] * 3 + ["Q8_0"] * 3
    assert all(shape == (ROWS, COLS) and w is None for _, shape, w in ggml.calls)


def test_types_that_need_an_imatrix_get_one() -> None:
    ggml_calls: list = []
    results = list(
        run_bench(["IQ2_XXS", "Q4_0"], rows=ROWS, cols=COLS, repeats=1, ggml=lambda *a: ggml_calls.append(a))
    )
    assert [r.type_name for r in results] == ["IQ2_XXS", "Q4_0"]
    assert all(r.quantize_melem_s > 0 and r.dequantize_melem_s > 0 and r.threads == 0 for r in results)
    (iq2_weights, q4_weights) = (call[2] for call in ggml_calls)
    assert np.array_equal(iq2_weights, bench_imatrix(COLS)) and q4_weights is None


def test_with_imatrix_every_type_gets_the_same_one() -> None:
    seen: list = []
    list(run_bench(["Q4_0"], rows=ROWS, cols=COLS, repeats=2, with_imatrix=True, ggml=lambda *a: seen.append(a)))
    assert len(seen) == 2 and all(np.array_equal(w, bench_imatrix(COLS)) for _, _, w in seen)


def test_without_ggml_there_is_no_ggml_rate() -> None:
    (r,) = run_bench(["Q8_0"], rows=ROWS, cols=COLS, repeats=1)
    assert r.ggml_melem_s is None


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(QuantError, match="Q9_9"):
        list(run_bench(["Q9_9"], rows=ROWS, cols=COLS, repeats=1))
