"""The HQQ encoder: its API, blocks that decode as the type's usual blocks, and error vs ggml's."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from quant_core import EncoderError, UnknownTypeError, dequantize, quantize
from quant_core.assets import DEMO_MODEL, HQQ_MEASUREMENTS
from quant_core.export import iter_export
from quant_core.hqq_policy import hqq_wins, kld_pairs, measured_configs
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.qtypes import ENCODERS, HQQ_TYPES, QTYPES, check_encoder, encoders_for

HQQ = sorted(HQQ_TYPES, key=list(QTYPES).index)


def _weights(kind: str, rows: int = 32, cols: int = 1024, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return (0.02 * rng.standard_normal((rows, cols))).astype(np.float32)
    return (0.02 * rng.standard_t(3, (rows, cols))).astype(np.float32)  # heavy tails


def _importance(cols: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(0.0, 1.0, cols).astype(np.float32)


def test_encoder_facts_live_in_the_type_table() -> None:
    assert ENCODERS[0] == "ggml" and "hqq" in ENCODERS
    assert set(HQQ) == {"Q4_1", "Q5_1", "Q2_K", "Q4_K", "Q5_K"}
    for name in QTYPES:
        assert ("hqq" in encoders_for(name)) == (name in HQQ_TYPES), name
    assert check_encoder("q4_k", " HQQ ") == "hqq"


@pytest.mark.parametrize(
    ("type_name", "encoder", "error", "match"),
    [
        ("Q8_0", "hqq", EncoderError, "cannot write Q8_0"),
        ("Q4_0", "hqq", EncoderError, "cannot write Q4_0"),
        ("Q4_K", "gptq", EncoderError, "unknown encoder 'gptq'"),
        ("Q9_K", "hqq", UnknownTypeError, "unknown tensor type"),
    ],
)
def test_bad_encoder_is_one_line_error(type_name: str, encoder: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match) as info:
        quantize(_weights("normal", 2, 256), type_name, encoder=encoder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("type_name", HQQ)
@pytest.mark.parametrize("with_imatrix", [False, True])
def test_hqq_blocks_decode_as_gguf_py_decodes_them(type_name: str, with_imatrix: bool) -> None:
    x = _weights("heavy", 8, 512)
    qw = _importance(512) if with_imatrix else None
    q = quantize(x, type_name, imatrix=qw, encoder="hqq")
    assert q.shape == (8, QTYPES[type_name].row_bytes(512))
    ours = dequantize(q, type_name, 512)
    theirs = gguf.quants.dequantize(q, gguf.GGMLQuantizationType[type_name])
    assert np.array_equal(ours, theirs)
    assert np.abs(ours - x).max() < np.abs(x).max()  # a fit, not noise
    assert not np.array_equal(q, quantize(x, type_name, imatrix=qw))  # not ggml's bytes


@pytest.mark.parametrize("type_name", HQQ)
def test_hqq_bytes_do_not_depend_on_threads(type_name: str) -> None:
    x = _weights("normal", 16, 512)
    assert np.array_equal(quantize(x, type_name, threads=1, encoder="hqq"), quantize(x, type_name, encoder="hqq"))


@pytest.mark.parametrize("five_bits", [False, True])
def test_legacy_codes_are_the_nearest_for_the_stored_scale_and_min(five_bits: bool) -> None:
    """The final pass rounds with the stored fp16 d and m: every error within half a step."""
    type_name = "Q5_1" if five_bits else "Q4_1"
    nmax = 31 if five_bits else 15
    x = _weights("heavy", 8, 256)
    q = quantize(x, type_name, encoder="hqq")
    block = QTYPES[type_name].type_size
    blocks = q.reshape(-1, block)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    y = dequantize(q, type_name, 256).reshape(-1, 32)
    xs = x.reshape(-1, 32)
    inside = (xs >= m) & (xs <= m + nmax * d)  # codes outside the grid are clamped
    assert inside.mean() > 0.9
    assert np.all(np.abs(y - xs)[inside] <= 0.5 * np.broadcast_to(d, xs.shape)[inside] * (1 + 1e-3))


def _group_l1(x: np.ndarray, y: np.ndarray, group: int) -> np.ndarray:
    return np.abs(y - x).reshape(-1, group).mean(axis=1)


@pytest.mark.parametrize("kind", ["normal", "heavy"])
@pytest.mark.parametrize("type_name", ["Q4_1", "Q5_1"])
def test_hqq_l1_per_group_is_not_worse_than_ggml(kind: str, type_name: str) -> None:
    """Without an importance matrix ggml's Q4_1/Q5_1 are min-max; HQQ's zero fits the L1 better.

    Per group, HQQ may lose only what the fp16 rounding of its stored min costs (< 1 %).
    """
    x = _weights(kind, 64, 1024)
    ggml = _group_l1(x, dequantize(quantize(x, type_name), type_name, 1024), 32)
    hqq = _group_l1(x, dequantize(quantize(x, type_name, encoder="hqq"), type_name, 1024), 32)
    assert hqq.mean() < 0.97 * ggml.mean()
    assert np.all(hqq <= ggml * 1.01)


def test_imatrix_weighs_the_fit() -> None:
    """With importance weights, the weighted error is lower than HQQ's unweighted fit."""
    x = _weights("heavy", 32, 512)
    qw = _importance(512)
    plain = dequantize(quantize(x, "Q4_1", encoder="hqq"), "Q4_1", 512)
    weighted = dequantize(quantize(x, "Q4_1", imatrix=qw, encoder="hqq"), "Q4_1", 512)
    assert (qw * np.abs(weighted - x)).mean() < (qw * np.abs(plain - x)).mean()


def _reencode_in_place(model_path: Path, path: Path, encoder: str) -> int:
    """Rewrite every tensor of an HQQ-encodable type in ``path`` with ``encoder``; returns the count."""
    model = open_model(model_path)
    reader = gguf.GGUFReader(path, "r+")
    count = 0
    for t in reader.tensors:
        name = t.tensor_type.name
        if name not in HQQ_TYPES:
            continue
        rows = model.rows_f32(t.name)
        t.data[...] = quantize(rows, name, encoder=encoder).reshape(t.data.shape)
        count += 1
    reader.data.flush()
    return count


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="the demo model is not in this checkout")
@pytest.mark.parametrize("preset", ["Q4_K_M", "Q4_1"])
def test_hqq_encoded_demo_model_runs_in_llama_cpp(preset: str, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")
    from quant_core.quality.runtime import ChunkEvaluator, LlamaModel

    model = open_model(DEMO_MODEL)
    out = tmp_path / "hqq.gguf"
    for _ in iter_export(model, build_plan(model, QuantOptions(preset=preset)), out):
        pass
    ggml_bytes = out.read_bytes()
    assert _reencode_in_place(DEMO_MODEL, out, "hqq") > 0
    assert out.read_bytes() != ggml_bytes and len(out.read_bytes()) == len(ggml_bytes)
    llm = LlamaModel(out)
    try:
        tokens = llm.tokenize(b"Once upon a time there was a little robot who liked to " * 8)[:64]
        evaluator = ChunkEvaluator(llm, 64, threads=2)
        try:
            logits = next(evaluator.iter_chunks(tokens, 1))
        finally:
            evaluator.close()
    finally:
        llm.close()
    assert logits.shape[1] == llm.n_vocab and np.isfinite(logits).all()
    assert logits.std() > 0


def _measurements(tmp_path: Path, rows: list[tuple], unc: float = 0.0) -> Path:
    results = [
        {
            "model": m,
            "config": c,
            "imatrix": i,
            "encoder": e,
            "quality": None if k is None else {"kld_mean": k, "kld_unc": unc},
        }
        for m, c, i, e, k in rows
    ]
    path = tmp_path / "hqq.json"
    path.write_text(json.dumps({"results": results}))
    return path


def test_hqq_is_suggested_only_where_its_kld_is_lower(tmp_path: Path) -> None:
    path = _measurements(
        tmp_path,
        [
            ("demo", "Q4_1", False, "ggml", 0.05),
            ("demo", "Q4_1", False, "hqq", 0.04),
            ("demo", "Q4_1", True, "ggml", 0.03),
            ("demo", "Q4_1", True, "hqq", 0.035),
            ("demo", "Q4_K", False, "ggml", 0.02),
            ("demo", "Q4_K", False, "hqq", 0.01),
            ("real", "Q4_K", False, "ggml", 0.02),
            ("real", "Q4_K", False, "hqq", 0.03),  # loses on a second model: not suggested
            ("real", "Q5_1", False, "ggml", None),  # weight error only, no quality pass
            ("real", "Q5_1", False, "hqq", None),
        ],
    )
    assert hqq_wins("q4_1", False, path) and not hqq_wins("Q4_1", True, path)
    assert not hqq_wins("Q4_K", False, path)
    assert not hqq_wins("Q5_1", False, path) and not hqq_wins("Q8_0", False, path)
    assert not hqq_wins("Q4_1", False, tmp_path / "missing.json")
    assert sorted(kld_pairs("Q4_K", False, path)) == [("demo", 0.02, 0.01), ("real", 0.02, 0.03)]
    assert kld_pairs("Q5_1", False, path) == [] and kld_pairs("Q4_1", False, tmp_path / "missing.json") == []


def test_a_kld_difference_within_the_noise_is_not_a_win(tmp_path: Path) -> None:
    rows = [("demo", "Q5_K", False, "ggml", 0.000315), ("demo", "Q5_K", False, "hqq", 0.000312)]
    assert hqq_wins("Q5_K", False, _measurements(tmp_path, rows, unc=0.0))
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    assert not hqq_wins("Q5_K", False, _measurements(noisy, rows, unc=0.000002))


def test_bundled_measurements_cover_every_hqq_type() -> None:
    if not HQQ_MEASUREMENTS.is_file():
        pytest.skip("no measurements bundled")
    covered = {config for config, _ in measured_configs()}
    assert covered >= HQQ_TYPES
