"""IQ3_XXS / IQ3_S details the golden vectors cover only indirectly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from quant_core import dequantize, quantize
from quant_core.kernels._iq3_grids import iq3_tables


def _ggml_neighbours(levels: np.ndarray, code: int, nwant: int) -> list[int]:
    """iq3xs_init_impl's list for one off-grid code: sort (distance, index), keep nwant distances."""
    pos = np.array([2 * ((code >> (3 * k)) & 7) + 1 for k in range(4)])
    d2 = ((levels.astype(np.int64) - pos) ** 2).sum(axis=1)
    pairs = sorted((int(d2[j]), j) for j in range(levels.shape[0]))
    kept, dist, nhave = [], pairs[0][0], 1
    for d, j in pairs:
        if d > dist:
            if nhave == nwant:
                break
            dist, nhave = d, nhave + 1
        kept.append(j)
    return kept


@pytest.mark.parametrize("grid_size,nwant", [(256, 2), (512, 3)])
def test_neighbour_tables_follow_ggml(grid_size: int, nwant: int) -> None:
    t = iq3_tables(grid_size)
    assert (t.kmap >= 0).sum() == grid_size
    for code in range(0, 4096, 7):  # a sample keeps this fast
        g = int(t.kmap[code])
        if g >= 0:
            packed = sum(int(t.codes[g, k]) << (3 * k) for k in range(4))
            assert packed == code
            continue
        start = -g - 1
        n = int(t.neighbours[start])
        assert t.neighbours[start + 1 : start + 1 + n].tolist() == _ggml_neighbours(t.levels, code, nwant)


def test_tables_are_built_lazily() -> None:
    code = (
        "import quant_core\n"
        "from quant_core.kernels import _iq3_grids as g\n"
        "assert not g._CACHE, 'built at import'\n"
        "g.iq3_tables(512)\n"
        "print(g.BUILD_SECONDS[512])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 2.0


def test_iq3_s_zero_block_shifts_later_blocks_like_ggml() -> None:
    """ggml does not advance qs/signs past an all-zero 32-block: later blocks land early."""
    x = np.random.default_rng(3).normal(0, 0.02, size=(1, 256)).astype(np.float32)
    x[0, :32] = 0
    q = quantize(x, "IQ3_S")[0]
    assert not q[2 + 56 : 2 + 64].any() and not q[74 + 28 : 74 + 32].any()
    assert q[66] == 0 and q[106] & 0x0F == 0


@pytest.mark.parametrize("type_name", ["IQ3_XXS", "IQ3_S"])
def test_threads_do_not_change_bytes_and_round_trip_is_close(type_name: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.02, size=(6, 512)).astype(np.float32)
    qw = rng.gamma(2.0, 0.5, size=512).astype(np.float32)
    for imatrix in (None, qw):
        one = quantize(x, type_name, imatrix=imatrix, threads=1)
        assert np.array_equal(one, quantize(x, type_name, imatrix=imatrix, threads=2))
    y = dequantize(quantize(x, type_name), type_name, 512)
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 0.25


@pytest.mark.parametrize("type_name,block_bytes", [("IQ3_XXS", 98), ("IQ3_S", 110)])
def test_dequantize_random_blocks_like_gguf(type_name: str, block_bytes: int) -> None:
    import gguf

    rng = np.random.default_rng(7)
    q = rng.integers(0, 256, size=(8, 4 * block_bytes), dtype=np.uint8)
    d = rng.normal(0, 0.01, size=(8, 4)).astype(np.float16).view(np.uint8).reshape(8, 4, 2)
    q.reshape(8, 4, block_bytes)[:, :, :2] = d
    want = gguf.dequantize(q, getattr(gguf.GGMLQuantizationType, type_name)).reshape(8, -1)
    got = dequantize(q, type_name, 1024)
    assert np.array_equal(got.view(np.uint32), want.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("type_name", ["IQ3_XXS", "IQ3_S"])
def test_overflowing_search_is_refused_like_ggml_aborts(type_name: str) -> None:
    from quant_core import QuantError

    x = np.random.default_rng(9).normal(0, 1e18, size=(2, 256)).astype(np.float32)
    with pytest.raises(QuantError, match="too large"):
        quantize(x, type_name)
