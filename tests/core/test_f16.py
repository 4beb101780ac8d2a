"""The numba F16 conversions give numpy's bits (IEEE round to nearest even) for every value."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quant_core import dequantize, quantize
from quant_core.kernels.floats import dequantize_f16, quantize_f16

NO_IMATRIX = np.zeros(0, dtype=np.float32)


def _numpy_bits(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x.astype("<f2").view(np.uint16)


def _kernel_bits(x: np.ndarray) -> np.ndarray:
    return quantize_f16(np.ascontiguousarray(x, dtype=np.float32).reshape(1, -1), NO_IMATRIX).view("<u2")[0]


def _finite_halves() -> np.ndarray:
    h = np.arange(0x7C00, dtype=np.uint16)  # every finite non-negative half
    return h.view(np.float16).astype(np.float64)


def test_every_rounding_boundary() -> None:
    # midpoints between neighbouring halves (exact in float32) and their float32 neighbours:
    # ties go to even, one ulp off goes to the nearer half; this covers subnormal halves,
    # the last finite half (65504 / 65520 -> inf) and every binade in between
    h = _finite_halves()
    mid = ((h[:-1] + h[1:]) / 2).astype(np.float32)
    mid = np.concatenate([mid, [np.float32(65520.0)]])
    cases = np.concatenate(
        [mid, np.nextafter(mid, np.float32(0)), np.nextafter(mid, np.float32(np.inf)), h.astype(np.float32)]
    )
    cases = np.concatenate([cases, -cases])
    assert np.array_equal(_kernel_bits(cases), _numpy_bits(cases))


def test_a_stride_through_all_float32_bit_patterns() -> None:
    bits = np.arange(0, 1 << 32, 997, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    finite = x[~np.isnan(x)]
    assert finite.size > 4_000_000
    assert np.array_equal(_kernel_bits(finite), _numpy_bits(finite))


def test_specials() -> None:
    x = np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            1e-45,
            -1e-45,
            3.4028235e38,
            -3.4028235e38,
            2.0**-25,
            2.0**-25 * 1.0000001,
            2.0**-24,
            65504.0,
            65519.996,
            65520.0,
        ],
        dtype=np.float32,
    )
    assert np.array_equal(_kernel_bits(x), _numpy_bits(x))
    nan = np.array([0x7FC00000, 0xFFC00000, 0x7F800001], dtype=np.uint32)  # quiet, negative, signaling
    # ggml's conversion: every NaN becomes the quiet NaN 0x7E00 with its sign
    assert _kernel_bits(nan.view(np.float32)).tolist() == [0x7E00, 0xFE00, 0x7E00]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
def test_quantize_matches_numpy(x: np.ndarray) -> None:
    assert np.array_equal(quantize(x, "F16").view("<u2")[0], _numpy_bits(x))


def test_dequantize_every_half_like_numpy() -> None:
    h = np.arange(1 << 16, dtype=np.uint16)
    got = dequantize(h.view(np.uint8), "F16", 1 << 16)
    want = h.view("<f2").astype(np.float32)
    assert np.array_equal(got.view(np.uint32)[0], want.view(np.uint32))  # NaN payloads too
    ro = h.view(np.uint8).reshape(2, -1)
    ro.flags.writeable = False
    assert np.array_equal(dequantize_f16(ro, 1 << 15).view(np.uint32).reshape(-1), want.view(np.uint32))
