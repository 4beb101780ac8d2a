"""The bracketing E2M1 search equals ggml's 16-entry scan on every scale and tricky input."""

from __future__ import annotations

import numpy as np
from numba import njit

from quant_core.kernels.fp4 import UE4M3, best_index_e2m1, best_index_e2m1_scan, e8m0_half, fp32_to_ue4m3

MAGNITUDES = np.array([0, 1, 2, 3, 4, 6, 8, 12], dtype=np.float64)


@njit(cache=False, error_model="numpy")  # as the kernels: d = 0 divides by zero (C semantics)
def _count_mismatches(values, scales):
    bad = 0
    for d in scales:
        for v in values:
            x = v * d
            if not np.isfinite(x):  # only valid (finite) weights reach the search
                continue
            if best_index_e2m1(x, d) != best_index_e2m1_scan(x, d):
                bad += 1
    return bad


def _probe_values() -> np.ndarray:
    """Ratios x/d near every table entry and midpoint (a few ulps either side), both signs."""
    points = np.concatenate([MAGNITUDES, (MAGNITUDES[:-1] + MAGNITUDES[1:]) / 2, [15.99, 20.0]])
    out = []
    for p in points.astype(np.float32):
        v = p
        for _ in range(4):
            out.append(v)
            v = np.nextafter(v, np.float32(np.inf))
        v = p
        for _ in range(4):
            out.append(v)
            v = np.nextafter(v, np.float32(-np.inf))
    rng = np.random.default_rng(3)
    out.extend(rng.uniform(0, 16, 2000).astype(np.float32))
    vals = np.array(out, dtype=np.float32)
    return np.concatenate([vals, -vals])


def _scales() -> np.ndarray:
    mx = [e8m0_half(e) for e in range(256)]
    return np.unique(np.concatenate([np.array(mx, dtype=np.float32), UE4M3])).astype(np.float32)


def test_bracket_search_matches_scan_on_scaled_grid() -> None:
    assert _count_mismatches(_probe_values(), _scales()) == 0


def test_bracket_search_matches_scan_on_raw_floats() -> None:
    # values not produced by scaling: arbitrary float32 bit patterns near each scale
    rng = np.random.default_rng(5)
    raw = rng.uniform(-16, 16, 20000).astype(np.float32)
    scales = np.array([2.0**-3, 0.0546875, 0.3125, 7.0], dtype=np.float32)
    values = np.concatenate([raw, raw * np.float32(1 + 2**-20)])
    assert _count_mismatches(values, scales) == 0


def test_ue4m3_encoder_edges() -> None:
    assert fp32_to_ue4m3(np.float32(0.0)) == 0
    assert fp32_to_ue4m3(np.float32(1e9)) == 0x7E  # clamped to 448
    assert fp32_to_ue4m3(np.float32(1.0)) == 0x38
    assert fp32_to_ue4m3(np.float32(2.0**-9)) == 1  # smallest subnormal
    assert fp32_to_ue4m3(np.float32(2.0**-11)) == 0  # rounds below the smallest subnormal
    # round half up on the mantissa: 1 + 1/16 lies between 1 and 1.125 and goes up
    assert fp32_to_ue4m3(np.float32(1.0625)) == 0x39
