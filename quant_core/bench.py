"""Throughput measurement of the quantizers (what ``quant-explorer bench`` prints)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .kernels import QUANTIZERS
from .qtypes import QTYPES, qtype
from .quantize import dequantize, quantize


@dataclass(frozen=True)
class BenchResult:
    """Throughput of one type, in million elements per second (best of the repeats)."""

    type_name: str
    threads: int
    quantize_melem_s: float
    dequantize_melem_s: float
    warmup_s: float
    ggml_melem_s: float | None = None


def bench_matrix(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """The seeded N(0, 0.02^2) float32 matrix every type is measured on."""
    return np.random.default_rng(seed).normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)


def bench_imatrix(cols: int, seed: int = 1) -> np.ndarray:
    """A plausible positive importance vector (mean squared activations)."""
    return (np.random.default_rng(seed).gamma(2.0, 0.5, size=cols) + 1e-3).astype(np.float32)


def default_types() -> list[str]:
    """Every type we can quantize, in table order."""
    return [name for name in QTYPES if name in QUANTIZERS]


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_bench(
    types: Sequence[str],
    rows: int = 4096,
    cols: int = 4096,
    threads: int | None = None,
    repeats: int = 3,
    with_imatrix: bool = False,
    ggml: Callable[[str, np.ndarray, np.ndarray | None], object] | None = None,
) -> Iterator[BenchResult]:
    """Yield one :class:`BenchResult` per type; JIT warm-up happens on a small slice first."""
    x = bench_matrix(rows, cols)
    qw = bench_imatrix(cols) if with_imatrix else None
    n_elem = x.size / 1e6
    for name in types:
        qt = qtype(name)
        needs_imatrix = qt.ggml_requires_imatrix and qw is None
        weights = bench_imatrix(cols) if needs_imatrix else qw
        start = time.perf_counter()
        small = quantize(x[:2], qt, imatrix=weights, threads=threads)
        dequantize(small, qt, cols, threads=threads)
        warmup = time.perf_counter() - start
        q = quantize(x, qt, imatrix=weights, threads=threads)
        t_q = _best_time(lambda: quantize(x, qt, imatrix=weights, threads=threads), repeats)
        t_d = _best_time(lambda: dequantize(q, qt, cols, threads=threads), repeats)
        ggml_rate = None
        if ggml is not None:
            t_g = _best_time(lambda: ggml(qt.name, x, weights), repeats)
            ggml_rate = n_elem / t_g if t_g > 0 else None
        used = threads if threads else 0
        yield BenchResult(qt.name, used, n_elem / t_q, n_elem / t_d, warmup, ggml_rate)
