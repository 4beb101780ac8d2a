"""KL-divergence statistics of a candidate against stored base log-probabilities.

The arithmetic follows ``llama-perplexity --kl-divergence`` (b11312) step by step, including
where it rounds to f32, so that the numbers agree with its printout: per scored position the
KLD over base entries above -16, the negative log-likelihoods of candidate and base, the
probability difference of the right token and whether both models rank the same token first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._kernels import kld_rows

_F = np.float32


def percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """llama-perplexity's percentile: linear interpolation at ``fraction * (n - 1)``, in f32."""
    v = sorted_values
    if fraction <= 0:
        return float(v[0])
    if fraction >= 1:
        return float(v[-1])
    p = _F(fraction) * _F(len(v) - 1)
    ip = int(p)
    p = p - _F(ip)
    return float((_F(1) - p) * v[ip] + p * v[min(ip + 1, len(v) - 1)])


def median(sorted_values: np.ndarray) -> float:
    """Middle value, or the f32 mean of the two middle values."""
    v, n = sorted_values, len(sorted_values)
    if n % 2:
        return float(v[n // 2])
    return float(_F(0.5) * (v[n // 2] + v[n // 2 - 1]))


def mean_and_uncertainty(total: float, total2: float, count: int) -> tuple[float, float]:
    """Mean and its standard error (0 for ten values or fewer), as llama-perplexity."""
    if count < 1:
        return 0.0, 0.0
    f = total / count
    df = total2 / count - f * f
    return f, (float(np.sqrt(df / (count - 1))) if df > 0 and count > 10 else 0.0)


@dataclass(frozen=True)
class QualityReport:
    """What ``llama-perplexity --kl-divergence`` prints, as numbers (fractions, not percent)."""

    ppl: float
    ppl_unc: float
    ppl_base: float
    ppl_base_unc: float
    ppl_cor: float
    ln_ppl_ratio: float
    ln_ppl_ratio_unc: float
    kld_mean: float
    kld_unc: float
    kld_max: float
    kld_p999: float
    kld_p99: float
    kld_p95: float
    kld_p90: float
    kld_median: float
    kld_p10: float
    kld_p5: float
    kld_p1: float
    kld_p01: float
    kld_min: float
    dp_mean: float
    dp_mean_unc: float
    dp_max: float
    dp_min: float
    rms_dp: float
    rms_dp_unc: float
    same_top_p: float
    same_top_p_unc: float
    n_same_top: int
    tokens: int
    n_chunk: int
    n_ctx: int
    candidate_bytes: int = 0

    def as_json(self) -> dict[str, float | int]:
        return asdict(self)


class KldAccumulator:
    """Running sums and per-position values over all scored positions, chunk by chunk."""

    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self.sums = dict.fromkeys(
            ("nll", "nll2", "nll_base", "nll_base2", "nll_nll_base", "kld", "kld2", "dp", "dp2", "dp4"), 0.0
        )
        self.n_same_top = 0
        self.count = 0
        self._kld: list[np.ndarray] = []
        self._dp: list[np.ndarray] = []

    def add(self, logits: np.ndarray, records: np.ndarray, next_tokens: np.ndarray, block: int = 64) -> None:
        """Score rows of candidate logits against the base records; ``next_tokens`` are the targets."""
        for s in range(0, len(logits), block):
            self._add_block(
                np.asarray(logits[s : s + block], dtype=np.float32),
                records[s : s + block],
                np.asarray(next_tokens[s : s + block]),
            )

    def _add_block(self, logits: np.ndarray, records: np.ndarray, tok: np.ndarray) -> None:
        heads = np.ascontiguousarray(records[:, :4]).view("<f4")
        codes = np.ascontiguousarray(records[:, 4 : 4 + self.n_vocab])
        kld, nll, nll_base, same, dp = kld_rows(
            np.ascontiguousarray(logits, dtype=np.float32), codes, heads, tok.astype(np.int64)
        )
        s = self.sums
        s["nll"] += float(nll.sum(dtype=np.float64))
        s["nll2"] += float((nll * nll).sum(dtype=np.float64))
        s["nll_base"] += float(nll_base.sum(dtype=np.float64))
        s["nll_base2"] += float((nll_base * nll_base).sum(dtype=np.float64))
        s["nll_nll_base"] += float((nll * nll_base).sum(dtype=np.float64))
        s["kld"] += float(kld.sum())
        s["kld2"] += float((kld * kld).sum())
        self.n_same_top += int(same.sum())
        dp2 = (dp * dp).astype(np.float64)
        s["dp"] += float(dp.sum(dtype=np.float64))
        s["dp2"] += float(dp2.sum())
        s["dp4"] += float((dp2 * dp2).sum())
        self.count += len(logits)
        self._kld.append(kld.astype(np.float32))
        self._dp.append(dp)

    def report(self, n_chunk: int, n_ctx: int, candidate_bytes: int = 0) -> QualityReport:
        """The final statistics (needs at least 100 scored positions, as llama-perplexity)."""
        s, n = self.sums, self.count
        log_ppl, log_ppl_unc = mean_and_uncertainty(s["nll"], s["nll2"], n)
        log_base, log_base_unc = mean_and_uncertainty(s["nll_base"], s["nll_base2"], n)
        cov = 0.0 if n < 10 else (s["nll_nll_base"] / n - (s["nll"] / n) * (s["nll_base"] / n)) / (n - 1)
        ppl, ppl_base = float(np.exp(log_ppl)), float(np.exp(log_base))
        kld_mean, kld_unc = mean_and_uncertainty(s["kld"], s["kld2"], n)
        dp_mean, dp_unc = mean_and_uncertainty(s["dp"], s["dp2"], n)
        mse, mse_unc = mean_and_uncertainty(s["dp2"], s["dp4"], n)
        rms = float(np.sqrt(mse))
        top = self.n_same_top / n
        kld = np.sort(np.concatenate(self._kld))
        dp = np.sort(np.concatenate(self._dp))
        cor_den = log_ppl_unc * log_base_unc
        return QualityReport(
            ppl=ppl,
            ppl_unc=ppl * log_ppl_unc,
            ppl_base=ppl_base,
            ppl_base_unc=ppl_base * log_base_unc,
            ppl_cor=cov / cor_den if cor_den else 0.0,
            ln_ppl_ratio=log_ppl - log_base,
            ln_ppl_ratio_unc=float(np.sqrt(max(log_ppl_unc**2 + log_base_unc**2 - 2.0 * cov, 0.0))),
            kld_mean=kld_mean,
            kld_unc=kld_unc,
            kld_max=float(kld[-1]),
            kld_p999=percentile(kld, 0.999),
            kld_p99=percentile(kld, 0.99),
            kld_p95=percentile(kld, 0.95),
            kld_p90=percentile(kld, 0.90),
            kld_median=median(kld),
            kld_p10=percentile(kld, 0.10),
            kld_p5=percentile(kld, 0.05),
            kld_p1=percentile(kld, 0.01),
            kld_p01=percentile(kld, 0.001),
            kld_min=float(kld[0]),
            dp_mean=dp_mean,
            dp_mean_unc=dp_unc,
            dp_max=float(dp[-1]),
            dp_min=float(dp[0]),
            rms_dp=rms,
            rms_dp_unc=0.5 / rms * mse_unc if rms else 0.0,
            same_top_p=top,
            same_top_p_unc=float(np.sqrt(top * (1 - top) / (n - 1))),
            n_same_top=self.n_same_top,
            tokens=n,
            n_chunk=n_chunk,
            n_ctx=n_ctx,
            candidate_bytes=candidate_bytes,
        )
