"""The --kl-divergence-base file format and the KLD statistics, without llama.cpp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_core.quality.errors import BaseFileError
from quant_core.quality.logits_file import (
    BaseFileReader,
    BaseFileWriter,
    decode_log_probs,
    encode_log_probs,
    record_len,
    scored_per_chunk,
)
from quant_core.quality.stats import KldAccumulator, median, percentile

F = np.float32


def _nearest_int(x: np.float32) -> int:
    """ggml's nearest_int: add 1.5 * 2^23 in f32 and read the low mantissa bits."""
    bits = np.array([F(x) + F(12582912.0)], dtype=np.float32).view(np.int32)[0]
    return int((bits & 0x007FFFFF) - 0x00400000)


def _encode_row_scalar(logits: np.ndarray) -> tuple[float, float, list[int]]:
    """One record, element by element in f32 as the C loop does (sum of exp in f64)."""
    lmax, lmin = F(logits.max()), F(logits.min())
    lmin = max(lmin, F(lmax - F(16)))
    sum_exp = math.fsum(float(F(math.exp(float(F(v - lmax))))) for v in logits)
    log_sum_exp = F(math.log(sum_exp))
    min_log_prob = F(F(lmin - lmax) - log_sum_exp)
    scale = F(F(lmax - lmin) / F(65535))
    inv = F(F(1) / scale)
    codes = [_nearest_int(F(inv * F(v - lmin))) if v > lmin else 0 for v in logits]
    return float(scale), float(min_log_prob), codes


@pytest.mark.parametrize("n_vocab", [7, 64, 301])
def test_encode_matches_scalar_reference(n_vocab: int) -> None:
    rng = np.random.default_rng(n_vocab)
    logits = (rng.standard_normal((5, n_vocab)) * 6).astype(np.float32)
    logits[0, :3] = logits[0].max()  # ties at the maximum
    rec = encode_log_probs(logits)
    assert rec.shape == (5, record_len(n_vocab)) and rec.dtype == np.uint16
    for row, r in zip(logits, rec):
        scale, min_log_prob, codes = _encode_row_scalar(row)
        head = r[:4].copy().view(np.float32)
        assert head[0] == F(scale) and head[1] == F(min_log_prob)
        assert r[4 : 4 + n_vocab].tolist() == codes
        assert not r[4 + n_vocab :].any()  # padding to an even count


def test_wide_range_is_cut_at_16_and_decodes_to_log_softmax() -> None:
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((3, 200)) * 20).astype(np.float32)
    rec = encode_log_probs(logits)
    log_p = decode_log_probs(rec, 200).astype(np.float64)
    x = logits.astype(np.float64)
    true = x - x.max(1, keepdims=True) - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True))
    above = true > true.max(1, keepdims=True) - 16
    scale = rec[:, :2].copy().view(np.float32)[:, 0].astype(np.float64)
    assert (np.abs(log_p - true)[above] <= (scale[:, None] * 0.51 + 1e-5).repeat(200, 1)[above]).all()
    assert (rec[:, 4:204][~above] == 0).all()  # everything at or below the cut is coded 0
    assert (rec[:, 4:204].max(1) == 65535).all()


def test_constant_row_has_zero_scale_and_codes() -> None:
    rec = encode_log_probs(np.full((1, 10), 2.5, dtype=np.float32))
    head = rec[0, :4].copy().view(np.float32)
    assert head[0] == 0 and head[1] == pytest.approx(-math.log(10), rel=1e-6)
    assert not rec[0, 4:].any()


def test_file_round_trip_and_layout(tmp_path) -> None:
    n_ctx, n_vocab, n_chunk = 16, 11, 3
    tokens = np.arange(n_ctx * n_chunk, dtype=np.int32) % n_vocab
    rng = np.random.default_rng(2)
    chunks = [
        encode_log_probs(rng.standard_normal((scored_per_chunk(n_ctx), n_vocab)).astype(np.float32))
        for _ in range(n_chunk)
    ]
    path = tmp_path / "base.kld"
    w = BaseFileWriter(path, n_ctx, n_vocab, tokens)
    for c in chunks:
        w.write_chunk(c)
    w.finish()
    raw = path.read_bytes()
    assert raw[:8] == b"_logits_"
    assert np.frombuffer(raw[8:20], dtype="<i4").tolist() == [n_ctx, n_vocab, n_chunk]
    assert len(raw) == 20 + 4 * n_ctx * n_chunk + n_chunk * scored_per_chunk(n_ctx) * record_len(n_vocab) * 2
    with BaseFileReader(path) as r:
        assert (r.header.n_ctx, r.header.n_vocab, r.header.n_chunk) == (n_ctx, n_vocab, n_chunk)
        assert np.array_equal(r.header.tokens, tokens)
        for c in chunks:
            assert np.array_equal(r.read_chunk(), c)
        with pytest.raises(BaseFileError):
            r.read_chunk()


def test_bad_files_are_rejected_in_one_line(tmp_path) -> None:
    bad = tmp_path / "bad.kld"
    bad.write_bytes(b"GGUF" + bytes(40))
    with pytest.raises(BaseFileError, match="_logits_"):
        BaseFileReader(bad)
    good = tmp_path / "good.kld"
    w = BaseFileWriter(good, 8, 4, np.zeros(16, dtype=np.int32))
    w.write_chunk(encode_log_probs(np.zeros((3, 4), dtype=np.float32)))
    with pytest.raises(BaseFileError, match="1 of 2 chunks"):
        w.finish()
    short = tmp_path / "short.kld"
    short.write_bytes(good.read_bytes()[:-2])
    with pytest.raises(BaseFileError, match="truncated"):
        BaseFileReader(short)
    with pytest.raises(BaseFileError, match="cannot read"):
        BaseFileReader(tmp_path / "missing.kld")


def test_percentile_interpolates_at_fraction_times_n_minus_1() -> None:
    v = np.arange(11, dtype=np.float32) * 2  # 0, 2, ..., 20
    assert percentile(v, 0.5) == 10.0
    assert percentile(v, 0.99) == pytest.approx(19.8, rel=1e-6)  # p = 9.9 -> 18 + 0.9 * 2
    assert percentile(v, 0.0) == 0.0 and percentile(v, 1.0) == 20.0
    rng = np.random.default_rng(3)
    w = np.sort(rng.exponential(size=1001).astype(np.float32))
    for f in (0.001, 0.1, 0.9, 0.95, 0.999):
        assert percentile(w, f) == pytest.approx(np.percentile(w.astype(np.float64), 100 * f), rel=1e-4)
    assert median(np.array([1, 2, 4, 8], dtype=np.float32)) == 3.0
    assert median(np.array([1, 2, 4], dtype=np.float32)) == 2.0


def _kld_reference(base_logp: np.ndarray, cand_logits: np.ndarray) -> np.ndarray:
    x = cand_logits.astype(np.float64)
    log_q = x - x.max(1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(1, keepdims=True))
    b = base_logp.astype(np.float64)
    keep = b > -16
    return np.where(keep, np.exp(b) * (b - log_q), 0).sum(1)


def test_accumulator_against_float64_reference() -> None:
    rng = np.random.default_rng(4)
    n_vocab, rows = 97, 300
    base = (rng.standard_normal((rows, n_vocab)) * 4).astype(np.float32)
    cand = base + (rng.standard_normal((rows, n_vocab)) * 0.3).astype(np.float32)
    rec = encode_log_probs(base)
    tok = rng.integers(0, n_vocab, rows)
    acc = KldAccumulator(n_vocab)
    acc.add(cand[:170], rec[:170], tok[:170], block=64)
    acc.add(cand[170:], rec[170:], tok[170:])
    r = acc.report(n_chunk=2, n_ctx=300)
    log_pb = decode_log_probs(rec, n_vocab)
    kld = _kld_reference(log_pb, cand)
    assert r.tokens == rows
    assert r.kld_mean == pytest.approx(kld.mean(), rel=1e-5)
    assert r.kld_max == pytest.approx(kld.max(), rel=1e-5)
    assert r.kld_p99 == pytest.approx(np.percentile(kld, 99), rel=1e-3)
    assert r.n_same_top == int((cand.argmax(1) == log_pb.argmax(1)).sum())
    x = cand.astype(np.float64)
    nll = -(x[np.arange(rows), tok] - x.max(1) - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)))
    assert r.ppl == pytest.approx(math.exp(nll.mean()), rel=1e-5)
    assert r.ppl_base == pytest.approx(math.exp(-log_pb[np.arange(rows), tok].astype(np.float64).mean()), rel=1e-5)
    dp = np.exp(-nll) - np.exp(log_pb[np.arange(rows), tok].astype(np.float64))
    assert r.rms_dp == pytest.approx(math.sqrt((dp**2).mean()), rel=1e-4)


def test_identical_model_scores_zero() -> None:
    rng = np.random.default_rng(5)
    base = (rng.standard_normal((120, 50)) * 1.5).astype(np.float32)  # all within 16 of the maximum
    acc = KldAccumulator(50)
    acc.add(base, encode_log_probs(base), rng.integers(0, 50, 120))
    r = acc.report(1, 242)
    # only the 16-bit coding of the base separates the two: |error| <= 16 / 65535 / 2 per log-prob
    assert abs(r.kld_mean) < 1e-5 and r.same_top_p == 1.0
    assert r.ppl == pytest.approx(r.ppl_base, rel=1.3e-4)


def _libm():
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    libm.log.restype, libm.log.argtypes = ctypes.c_double, [ctypes.c_double]
    return libm


def test_exponentials_are_the_c_librarys() -> None:
    """llama-perplexity calls expf; f64 exp rounded to f32 (or numpy's f32 exp) differs now and then."""
    from quant_core.quality._kernels import kld_rows

    libm = _libm()
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((20000, 4)) * 3).astype(np.float32)
    records = encode_log_probs(logits + rng.standard_normal(logits.shape).astype(np.float32))
    tokens = rng.integers(0, 4, len(logits))
    heads = np.ascontiguousarray(records[:, :4]).view("<f4")
    _, nll, nll_base, _, dp = kld_rows(logits, np.ascontiguousarray(records[:, 4:8]), heads, tokens)
    want = [F(libm.expf(float(-a)) - libm.expf(float(-b))) for a, b in zip(nll, nll_base)]
    assert dp.tolist() == want


def test_softmax_terms_use_the_c_library_as_llama_perplexity() -> None:
    """Bit-exact against libm's expf/log summed in order."""
    from quant_core.quality.logits_file import softmax_terms

    libm = _libm()
    rng = np.random.default_rng(6)
    logits = (rng.standard_normal((6, 4096)) * 3).astype(np.float32)
    lmax, lse = softmax_terms(logits)
    for row, mx, got in zip(logits, lmax, lse):
        total = 0.0
        for v in row:
            total += libm.expf(float(F(v - mx)))
        assert mx == row.max() and got == F(libm.log(total))
