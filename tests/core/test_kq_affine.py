"""The lockstep (batched) affine search equals the one-group helpers, and K-quant output
does not depend on the thread count."""

from __future__ import annotations

import numpy as np
import pytest

from quant_core import quantize
from quant_core.kernels._kq_affine import make_qkx2_quants, make_qkx3_quants
from quant_core.kernels._kq_affine_batch import N_STATE, affine_search_batch

F32 = np.float32

# (n, nmax, rmin, rdelta, nstep, use_mad, qkx3): the call sites of Q4_K, Q5_K and Q2_K
CASES = [
    (32, 15, -1.0, 0.1, 20, False, False),
    (32, 31, -0.5, 0.1, 15, False, False),
    (16, 3, -0.5, 0.1, 15, True, False),
    (32, 15, -0.9, 0.05, 36, False, True),
    (32, 31, -0.9, 0.05, 36, False, True),
    (16, 3, -0.9, 0.05, 36, False, True),
]


def _groups(n: int, G: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """G groups of n values with awkward members: zero, constant, negative, tiny, duplicates."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((G, n)) * 0.02).astype(F32)
    x[0] = 0.0
    x[1] = -0.25
    x[2] = 0.5
    x[3] = -np.abs(x[3])
    x[4] *= F32(1e-20)
    x[5] = rng.choice(np.array([-0.01, 0.0, 0.03], dtype=F32), n)
    x[6, 3] = 3.0
    x[7] = F32(-1.5) + rng.standard_normal(n).astype(F32) * F32(1e-6)
    w = (rng.random((G, n)) + F32(0.05)).astype(F32)
    w[8] = 0.0
    return x, w


@pytest.mark.parametrize("n,nmax,rmin,rdelta,nstep,use_mad,qkx3", CASES)
def test_batched_search_matches_single_groups(n, nmax, rmin, rdelta, nstep, use_mad, qkx3) -> None:
    G = 16
    single = make_qkx3_quants if qkx3 else make_qkx2_quants
    for seed in range(3):
        x, w = _groups(n, G, seed)
        xt, wt = np.ascontiguousarray(x.T), np.ascontiguousarray(w.T)
        Lt = np.empty((n, G), np.uint8)
        scales, mins = np.empty(G, F32), np.empty(G, F32)
        affine_search_batch(
            xt,
            wt,
            Lt,
            np.empty((n, G), np.uint8),
            nmax,
            rmin,
            rdelta,
            nstep,
            use_mad,
            qkx3,
            scales,
            mins,
            np.empty((N_STATE, G), F32),
        )
        for g in range(G):
            L = np.empty(n, np.uint8)
            s, m = single(x[g], w[g], L, np.empty(n, np.uint8), nmax, rmin, rdelta, nstep, use_mad)
            assert F32(s).view(np.uint32) == scales[g].view(np.uint32), (seed, g)
            assert F32(m).view(np.uint32) == mins[g].view(np.uint32), (seed, g)
            assert np.array_equal(L, Lt[:, g]), (seed, g)


@pytest.mark.parametrize("type_name", ["Q2_K", "Q4_K", "Q5_K"])
def test_thread_count_does_not_change_bytes(type_name: str) -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((6, 512)) * 0.02).astype(F32)
    qw = (rng.random(512) + 0.1).astype(F32)
    for imatrix in (None, qw):
        one = quantize(x, type_name, imatrix=imatrix, threads=1)
        two = quantize(x, type_name, imatrix=imatrix, threads=2)
        assert np.array_equal(one, two)
