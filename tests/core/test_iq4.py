"""IQ4_NL / IQ4_XS details the golden vectors only touch indirectly."""

from __future__ import annotations

import numpy as np

from quant_core import dequantize, quantize
from quant_core.kernels.iq4 import KVALUES, _table_value, best_index_iq4


def _ggml_best_index(x: np.float32) -> int:
    """ggml's original best_index_int8: saturate, binary search, nearer neighbour (ties up)."""
    t = KVALUES
    if x <= t[0]:
        return 0
    if x >= t[15]:
        return 15
    lo, hi = 0, 15
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if x < t[mid]:
            hi = mid
        else:
            lo = mid
    return hi - 1 if np.float32(x - t[hi - 1]) < np.float32(t[hi] - x) else hi


def _near_midpoints() -> np.ndarray:
    mids = (KVALUES[:-1] + KVALUES[1:]) / np.float32(2)
    bits = mids.view(np.int32)[:, None] + np.arange(-40, 41, dtype=np.int32)[None, :]
    extra = np.array([-1e9, -127, -200, 0, -0.0, 113, 200, 1e9], dtype=np.float32)
    rng = np.random.default_rng(5).uniform(-150, 150, 500).astype(np.float32)
    return np.concatenate([bits.view(np.float32).ravel(), extra, rng])


def test_best_index_matches_ggml_binary_search() -> None:
    for x in _near_midpoints():
        want = _ggml_best_index(x)
        assert best_index_iq4(x) == want, x
        assert _table_value(x + x) == KVALUES[want], x


def test_all_zero_blocks() -> None:
    x = np.zeros((2, 256), dtype=np.float32)
    nl = quantize(x, "IQ4_NL")
    assert np.all(nl.reshape(-1, 18)[:, :2] == 0) and np.all(nl.reshape(-1, 18)[:, 2:] == 0x88)
    xs = quantize(x, "IQ4_XS").reshape(-1, 136)
    assert np.all(xs[:, :4] == np.array([0x00, 0x80, 0xAA, 0xAA], dtype=np.uint8))
    assert np.all(xs[:, 4:8] == 0) and np.all(xs[:, 8:] == 0x88)
    assert not np.any(dequantize(xs, "IQ4_XS", 256))


def test_imatrix_changes_the_result() -> None:
    x = (np.random.default_rng(3).standard_normal((4, 512)) * 0.02).astype(np.float32)
    qw = np.random.default_rng(4).uniform(0.01, 5.0, 512).astype(np.float32)
    for t in ("IQ4_NL", "IQ4_XS"):
        assert not np.array_equal(quantize(x, t), quantize(x, t, imatrix=qw))
