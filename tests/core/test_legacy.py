"""Legacy, ternary and MXFP4 quantizers agree with gguf-py's quantizers on extreme scales.

gguf-py's quantizers for these types are bit-exact with ggml (facts §10). The rows here go
beyond the golden vectors: subnormal blocks (whose inverse scale overflows to inf, so codes come
from x86's float->int conversion of inf/NaN) and near-overflow magnitudes.
"""
from __future__ import annotations

import gguf
import numpy as np
import pytest

from quant_core import quantize

TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "TQ1_0", "TQ2_0", "MXFP4"]


def _extreme_rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = []
    for scale in [1e-42, 1e-39, 3e-38, 1e-30, 1e-3, 1.0, 1e4, 1e30, 2e37]:
        rows.append(rng.normal(0, 1, 512) * scale)
        rows.append(rng.integers(-3, 4, 512) * scale)  # duplicates and exact ties
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("type_name", TYPES)
def test_matches_gguf_py_on_extreme_scales(type_name: str) -> None:
    x = _extreme_rows()
    with np.errstate(all="ignore"):
        want = gguf.quantize(x, getattr(gguf.GGMLQuantizationType, type_name)).reshape(x.shape[0], -1)
    got = quantize(x, type_name)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_imatrix_result_does_not_depend_on_threads(type_name: str) -> None:
    x = np.random.default_rng(1).normal(0, 0.02, size=(8, 256)).astype(np.float32)
    qw = np.random.default_rng(2).gamma(2.0, 0.5, size=256).astype(np.float32)
    assert np.array_equal(quantize(x, type_name, qw, threads=1), quantize(x, type_name, qw, threads=2))
