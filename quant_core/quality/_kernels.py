"""Per-row loops of llama-perplexity's softmax and KLD, compiled with numba.

Why not numpy: llama-perplexity calls the C library's ``expf`` and ``log``; numpy's vectorised
``exp``/``log`` round differently now and then (a few terms in 4096), enough to move a stored
log-sum-exp by one f32 ulp. numba lowers ``math.exp`` on f32 and ``math.log`` on f64 to calls of
the same C library functions, so these loops give llama.cpp's values bit for bit, in its order
(sequential f64 sums, f32 arithmetic elsewhere).
"""

from __future__ import annotations

import math

import numba
import numpy as np

_CUT = np.float32(-16.0)  # base log-probabilities at or below this are left out of the KLD


@numba.njit(cache=True, nogil=True)
def softmax_rows(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per row: the maximum logit and ``float(log(sum(expf(l - max))))``."""
    rows, n = logits.shape
    lmax = np.empty(rows, dtype=np.float32)
    lse = np.empty(rows, dtype=np.float32)
    for r in range(rows):
        mx = logits[r, 0]
        for i in range(1, n):
            if logits[r, i] > mx:
                mx = logits[r, i]
        s = 0.0
        for i in range(n):
            s += math.exp(logits[r, i] - mx)
        lmax[r] = mx
        lse[r] = np.float32(math.log(s))
    return lmax, lse


@numba.njit(cache=True, nogil=True)
def kld_rows(
    logits: np.ndarray, codes: np.ndarray, heads: np.ndarray, tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per row: KLD (f64), nll and base nll (f32), same top token, Δp (f32) of the right token.

    ``codes`` are the u16 codes of the base records, ``heads`` their (scale, min_log_prob).
    """
    rows, n = logits.shape
    kld = np.empty(rows, dtype=np.float64)
    nll = np.empty(rows, dtype=np.float32)
    nll_base = np.empty(rows, dtype=np.float32)
    same = np.empty(rows, dtype=np.bool_)
    dp = np.empty(rows, dtype=np.float32)
    for r in range(rows):
        mx = logits[r, 0]
        imax = 0
        for i in range(1, n):
            if logits[r, i] > mx:
                mx = logits[r, i]
                imax = i
        s = 0.0
        for i in range(n):
            s += math.exp(logits[r, i] - mx)
        lse = np.float32(math.log(s))
        scale, min_lp = heads[r, 0], heads[r, 1]
        t = tokens[r]
        nll[r] = mx + lse - logits[r, t]
        nll_base[r] = -(scale * np.float32(codes[r, t]) + min_lp)
        log_z = mx + lse
        total = 0.0
        imax_base = 0
        p_max = np.float32(0.0)
        for i in range(n):
            p_log = scale * np.float32(codes[r, i]) + min_lp
            if i == 0 or p_log > p_max:
                p_max = p_log
                imax_base = i
            if p_log > _CUT:
                total += math.exp(p_log) * (p_log - logits[r, i] + log_z)
        kld[r] = total
        same[r] = imax == imax_base
        dp[r] = math.exp(-nll[r]) - math.exp(-nll_base[r])
    return kld, nll, nll_base, same, dp
