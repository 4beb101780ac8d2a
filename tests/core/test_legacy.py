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


def _reference_affine_row(x: np.ndarray, qw: np.ndarray, nmax: int) -> list[tuple]:
    """Per-block (d, m, codes) of ggml's Q4_1/Q5_1 imatrix path with the one-group search."""
    from quant_core.kernels._kq_affine import make_qkx3_quants

    n = x.shape[0]
    sigma2 = np.float32(0.0)
    for v in x:
        sigma2 = np.float32(sigma2 + v * v)
    sigma2 = np.float32(sigma2 / np.float32(n))
    blocks = []
    for b in range(n // 32):
        xb = x[32 * b : 32 * b + 32]
        w = (qw[32 * b : 32 * b + 32] * np.sqrt(sigma2 + xb * xb)).astype(np.float32)
        L = np.empty(32, dtype=np.uint8)
        d, the_min = make_qkx3_quants(xb, w, L, np.empty(32, dtype=np.uint8), nmax, -0.9, 0.05, 36, False)
        blocks.append((np.float16(d), np.float16(-the_min), L.copy()))
    return blocks


@pytest.mark.parametrize("type_name,nmax,block_bytes", [("Q4_1", 15, 20), ("Q5_1", 31, 24)])
def test_imatrix_affine_batches_match_one_group_search(type_name: str, nmax: int, block_bytes: int) -> None:
    # 11 blocks: one batch of 8 plus a tail of 3, with a constant and a zero block inside
    x = np.random.default_rng(3).normal(0, 0.02, size=(2, 352)).astype(np.float32)
    x[0, 64:96] = -0.25
    x[1, 320:352] = 0.0
    qw = np.random.default_rng(4).gamma(2.0, 0.5, size=352).astype(np.float32)
    got = quantize(x, type_name, qw)
    for r in range(2):
        for b, (d, m, L) in enumerate(_reference_affine_row(x[r], qw, nmax)):
            blk = got[r, b * block_bytes : (b + 1) * block_bytes]
            assert blk[0:2].view(np.float16)[0].tobytes() == d.tobytes()
            assert blk[2:4].view(np.float16)[0].tobytes() == m.tobytes()
            codes = np.concatenate([blk[-16:] & 0x0F, blk[-16:] >> 4])
            if nmax == 31:
                qh = int(blk[4:8].view(np.uint32)[0])
                codes = codes | (np.array([(qh >> j) & 1 for j in range(32)], dtype=np.uint8) << 4)
            assert np.array_equal(codes, L)
