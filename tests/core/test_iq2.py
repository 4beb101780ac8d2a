"""IQ2 grids and neighbour tables, thread independence and laziness of the table build."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from quant_core import dequantize, quantize
from quant_core.kernels._iq2_grids import POW3, iq2_tables

# First entries of ggml's kgrid_2bit_256 / _512 / _1024 (ggml-quants.c, iq2xs_init_impl).
KGRID_HEADS = {
    "IQ2_XXS": [0, 2, 5, 8, 10, 17, 20, 32, 34, 40, 42, 65, 68, 80, 88, 97],
    "IQ2_XS": [0, 2, 5, 8, 10, 17, 20, 22, 25, 32, 34, 37, 40, 65, 68, 70],
    "IQ2_S": [0, 2, 5, 8, 10, 17, 20, 22, 25, 32, 34, 37, 40, 65, 68, 70],
}
NWANT = {"IQ2_XXS": 2, "IQ2_XS": 2, "IQ2_S": 1}
TYPES = list(NWANT)


@pytest.mark.parametrize("type_name", TYPES)
def test_grid_from_gguf_packs_like_ggml_kgrid(type_name: str) -> None:
    codes = iq2_tables(type_name).codes.astype(np.int64)
    packed = (codes << (2 * np.arange(8))).sum(axis=1)
    assert packed[:16].tolist() == KGRID_HEADS[type_name]
    assert np.all(np.diff(packed) > 0)  # ggml's lists are ascending


@pytest.mark.parametrize("type_name", TYPES)
def test_neighbour_lists_match_a_full_sort(type_name: str) -> None:
    t = iq2_tables(type_name)
    levels = 2 * t.codes.astype(np.int64) + 1
    rng = np.random.default_rng(7)
    on_grid = 0
    for u in rng.choice(3**8, size=400, replace=False):
        if t.kmap[u] >= 0:
            assert np.array_equal(t.codes[t.kmap[u]], (u // POW3) % 3)
            on_grid += 1
            continue
        d2 = ((levels - (2 * ((u // POW3) % 3) + 1)) ** 2).sum(axis=1)
        order = sorted(range(d2.size), key=lambda j: (d2[j], j))  # ggml's qsort comparator
        limit = np.unique(d2)[NWANT[type_name] - 1]
        want = [j for j in order if d2[j] <= limit]
        start = -t.kmap[u] - 1
        got = t.neighbours[start + 1 : start + 1 + t.neighbours[start]].tolist()
        assert got == want
    assert on_grid < 400


@pytest.mark.parametrize("type_name", TYPES)
def test_bytes_do_not_depend_on_thread_count(type_name: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.02, size=(8, 512)).astype(np.float32)
    qw = rng.gamma(2.0, 0.5, size=512).astype(np.float32)
    one = quantize(x, type_name, imatrix=qw, threads=1)
    two = quantize(x, type_name, imatrix=qw, threads=2)
    assert np.array_equal(one, two)
    err = np.linalg.norm(dequantize(one, type_name, 512) - x) / np.linalg.norm(x)
    assert err < 0.5


def test_import_builds_no_table() -> None:
    code = (
        "import quant_core, quant_core.kernels._iq2_grids as g; "
        "assert not g._CACHE and not g._VALUES, 'tables built at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("type_name", TYPES)
def test_overflowing_search_is_refused_like_ggml_aborts(type_name: str) -> None:
    from quant_core import QuantError

    x = np.random.default_rng(9).normal(0, 1e18, size=(2, 256)).astype(np.float32)
    with pytest.raises(QuantError, match="too large"):
        quantize(x, type_name, imatrix=np.ones(256, dtype=np.float32))


def test_zero_importance_blocks_are_quantized() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.02, size=(2, 256)).astype(np.float32)
    qw = np.zeros(256, dtype=np.float32)  # ggml skips such blocks (scale 0) instead of aborting
    for type_name in TYPES:
        q = quantize(x, type_name, imatrix=qw)
        assert np.isfinite(dequantize(q, type_name, 256)).all()
