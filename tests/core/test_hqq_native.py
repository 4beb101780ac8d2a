"""HQQ's native format (the inspector's comparison scheme) against a plain NumPy version of HQQ."""

from __future__ import annotations

import numpy as np
import pytest

from quant_core.errors import ShapeError
from quant_core.hqq_native import SCHEMES, hqq_roundtrip, is_scheme, scheme_bpw, scheme_label, scheme_roundtrip


def naive_hqq(x: np.ndarray, nbits: int, group: int = 64) -> np.ndarray:
    """hqq's Quantizer.quantize + optimize_weights_proximal_legacy + dequantize, written plainly."""
    w = x.astype(np.float64).reshape(-1, group)
    qmax = 2**nbits - 1
    lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
    s = np.where(hi - lo <= 1e-4, 1.0, np.minimum(qmax / np.where(hi - lo == 0, 1, hi - lo), 2e4))
    z = -lo * s
    if nbits == 4:
        z = np.round(z)
    beta, best = 10.0, 1e4
    for _ in range(20):
        q = np.clip(np.round(w * s + z), 0, qmax)
        d = w - (q - z) / s
        a = np.abs(d)
        with np.errstate(divide="ignore"):
            e = np.sign(d) * np.maximum(a - np.where(a > 0, a ** (0.7 - 1), np.inf) / beta, 0)
        z = np.mean(q - (w - e) * s, axis=1, keepdims=True)
        beta *= 1.01
        err = np.abs(d).mean()
        if err < best:
            best = err
        else:
            break
    q = np.clip(np.round(w * s + z), 0, qmax)
    scale16 = (1.0 / s).astype(np.float32).astype(np.float16).astype(np.float32)
    zero16 = z.astype(np.float32).astype(np.float16).astype(np.float32)
    return ((q.astype(np.float32) - zero16) * scale16).reshape(x.shape)


@pytest.mark.parametrize("nbits", [4, 3, 2])
def test_matches_plain_numpy_hqq(nbits: int) -> None:
    rng = np.random.default_rng(nbits)
    x = rng.normal(0, 0.02, (48, 256)).astype(np.float32)
    x[3, :64] = 0.5  # a constant group (range below 1e-4: scale 1)
    x[5, 64:128] *= 40  # an outlier group
    ours, ref = hqq_roundtrip(x, nbits), naive_hqq(x, nbits)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    assert np.mean(ours == ref) > 0.999  # a rounding tie may fall the other way
    assert np.abs(ours - ref).max() <= np.abs(x).max() * 2.0**-nbits


@pytest.mark.parametrize("nbits", [4, 3, 2])
def test_each_group_has_at_most_2_to_the_bits_levels_and_fewer_bits_err_more(nbits: int) -> None:
    x = np.random.default_rng(7).normal(0, 0.02, (16, 512)).astype(np.float32)
    y = hqq_roundtrip(x, nbits)
    levels = [len(np.unique(y[r, g : g + 64])) for r in range(16) for g in range(0, 512, 64)]
    assert max(levels) <= 2**nbits
    rel = np.linalg.norm(x - y) / np.linalg.norm(x)
    if nbits > 2:
        assert rel < np.linalg.norm(x - hqq_roundtrip(x, nbits - 1)) / np.linalg.norm(x)


def test_scheme_names_bits_and_bad_shapes() -> None:
    assert {n: scheme_bpw(n) for n in SCHEMES} == {"HQQ4_G64": 4.5, "HQQ3_G64": 3.5, "HQQ2_G64": 2.5}
    assert is_scheme("hqq3_g64") and not is_scheme("Q4_K") and not is_scheme(None)
    assert scheme_label("HQQ2_G64") == "HQQ 2-bit g64 (2.5 bpw)"
    x = np.random.default_rng(1).normal(0, 1, (2, 128)).astype(np.float32)
    np.testing.assert_array_equal(scheme_roundtrip(x, "HQQ3_G64"), hqq_roundtrip(x, 3))
    with pytest.raises(ShapeError, match="multiple of 64"):
        hqq_roundtrip(np.zeros((2, 96), np.float32), 4)
    with pytest.raises(ShapeError, match="2, 3 or 4 bits"):
        hqq_roundtrip(np.zeros((2, 64), np.float32), 8)
