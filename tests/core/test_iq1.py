"""IQ1_S / IQ1_M details the golden vectors cover only indirectly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from quant_core import dequantize, quantize
from quant_core.kernels._iq1_grids import iq1_tables

from .golden import golden_imatrix, golden_input


def _ggml_neighbours(grid: np.ndarray, code: int) -> list[int]:
    """iq2xs_init_impl's list for one off-grid point: sort (distance, index), keep 3 distances."""
    pos = np.array([2 * ((code >> (2 * k)) & 3) + 1 for k in range(8)])
    d2 = ((2 * grid.astype(np.int64) + 1 - pos) ** 2).sum(axis=1)
    pairs = sorted((int(d2[j]), j) for j in range(grid.shape[0]))
    kept, dist, nhave = [], pairs[0][0], 1
    for d, j in pairs:
        if d > dist:
            if nhave == 3:
                break
            dist, nhave = d, nhave + 1
        kept.append(j)
    return kept


def test_neighbour_tables_follow_ggml() -> None:
    grid, kmap, neighbours, codes = iq1_tables()
    assert grid.shape == (2048, 8) and set(np.unique(grid)) == {0, 1, 2}
    assert (kmap >= 0).sum() == 2048
    checked = 0
    for code in range(0, 43692, 37):  # a sample keeps this fast
        if any((code >> (2 * k)) & 3 == 3 for k in range(8)):
            continue
        g = int(kmap[code])
        if g >= 0:
            assert sum(int(grid[g, k]) << (2 * k) for k in range(8)) == code
            continue
        start = -g - 1
        n = int(neighbours[start])
        assert neighbours[start + 1 : start + 1 + n].tolist() == _ggml_neighbours(grid, code)
        for g, packed in zip(neighbours[start + 1 : start + 1 + n], codes[start + 1 : start + 1 + n]):
            assert packed == sum(int(grid[g, k]) << (2 * k) for k in range(8))
        checked += 1
    assert checked > 50


def test_tables_are_built_lazily() -> None:
    code = (
        "import time, quant_core\n"
        "from quant_core.kernels import _iq1_grids as g\n"
        "assert g.iq1_tables.cache_info().currsize == 0, 'built at import'\n"
        "t = time.perf_counter(); g.iq1_tables(); print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 5.0  # generous: includes a cold numba compile on a busy machine


def test_bytes_do_not_depend_on_thread_count() -> None:
    x, qw = golden_input("set-b"), golden_imatrix("set-b")
    for name, weights in (("IQ1_S", qw), ("IQ1_M", qw), ("IQ1_M", None)):
        one = quantize(x, name, imatrix=weights, threads=1)
        two = quantize(x, name, imatrix=weights, threads=2)
        assert np.array_equal(one, two), name


def test_iq1_m_round_trip_is_close_to_input() -> None:
    x = np.random.default_rng(5).normal(0, 0.02, size=(4, 512)).astype(np.float32)
    y = dequantize(quantize(x, "IQ1_M"), "IQ1_M", 512)
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 0.7
