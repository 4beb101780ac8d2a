"""Measuring with llama.cpp in-process on tiny random llamas: passes, cache, cleanup, errors, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")

from quant_core.cli.main import main
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import (
    QualityError,
    QualityProgress,
    QualityReport,
    iter_plan_quality,
    iter_quality,
)
from quant_core.quality import cache as quality_cache
from quant_core.quality.logits_file import BaseFileReader, scored_per_chunk
from quant_core.quality.runtime import LlamaModel

from .quality_fixtures import sample_text, write_tiny_llama

N_CTX = 128


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny")
    text = d / "text.txt"
    text.write_bytes(sample_text(5 * N_CTX) + b"\n")
    return {
        "base": write_tiny_llama(d / "base.gguf"),
        "other": write_tiny_llama(d / "other.gguf", seed=1),
        "wide": write_tiny_llama(d / "wide.gguf", n_extra_tokens=3),
        "text": text,
    }


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(quality_cache.ENV_VAR, str(folder))
    return folder


def _run(gen) -> tuple[list[QualityProgress], QualityReport]:
    items = list(gen)
    assert isinstance(items[-1], QualityReport)
    return items[:-1], items[-1]


def test_tokenizer_adds_bos(models: dict[str, Path]) -> None:
    m = LlamaModel(models["base"])
    try:
        toks = m.tokenize(b"the cat")
        # BOS, the "th" merge (token 257), then one token per byte: "e", " " (as "Ġ"), "c", "a", "t"
        assert m.add_bos and toks.tolist() == [m.bos, 257, ord("e"), ord(" "), ord("c"), ord("a"), ord("t")]
    finally:
        m.close()


def test_base_file_layout_and_cache_hit(models: dict[str, Path], cache: Path) -> None:
    text = models["text"].read_bytes()
    progress, report = _run(iter_quality(models["base"], models["other"], text, n_ctx=N_CTX))
    assert {p.stage for p in progress} == {"base", "candidate"}
    (base_file,) = cache.glob("base-*.kld")
    with BaseFileReader(base_file) as r:
        h = r.header
    n_chunk = len(text) // N_CTX  # about one token per byte, BOS added, a few merges
    assert h.n_ctx == N_CTX and h.n_chunk in (n_chunk - 1, n_chunk) and h.n_vocab == 263
    assert report.tokens == h.n_chunk * scored_per_chunk(N_CTX)
    assert report.kld_mean > 0.01 and report.same_top_p < 1  # two unrelated random models
    mtime = base_file.stat().st_mtime_ns
    progress2, report2 = _run(iter_quality(models["base"], models["other"], text, n_ctx=N_CTX))
    assert {p.stage for p in progress2} == {"candidate"}  # the base pass came from the cache
    assert base_file.stat().st_mtime_ns == mtime
    assert report2 == report
    _run(iter_quality(models["base"], models["other"], text, n_ctx=N_CTX, chunks=2))
    assert len(list(cache.glob("base-*.kld"))) == 2  # other settings, other base pass


def test_model_against_itself(models: dict[str, Path]) -> None:
    _, r = _run(iter_quality(models["base"], models["base"], models["text"].read_bytes(), n_ctx=N_CTX))
    assert abs(r.kld_mean) < 1e-4 and r.kld_max < 1e-3
    assert r.same_top_p > 0.98 and r.ppl == pytest.approx(r.ppl_base, rel=1e-3)


def test_bad_inputs(models: dict[str, Path], tmp_path: Path) -> None:
    text = models["text"].read_bytes()
    with pytest.raises(QualityError, match="vocabulary of 266 tokens, the base 263"):
        list(iter_quality(models["base"], models["wide"], text, n_ctx=N_CTX))
    with pytest.raises(QualityError, match="at least 1024"):
        list(iter_quality(models["base"], models["other"], text, n_ctx=512))
    with pytest.raises(QualityError, match="no such candidate"):
        list(iter_quality(models["base"], tmp_path / "nope.gguf", text, n_ctx=N_CTX))


def _plan(path: Path, preset: str = "Q8_0"):
    model = open_model(path)
    return model, build_plan(model, QuantOptions(preset=preset))


def test_plan_measure_leaves_no_file(models: dict[str, Path], cache: Path) -> None:
    text = models["text"].read_bytes()
    model, plan = _plan(models["base"])
    progress, r = _run(iter_plan_quality(model, plan, text, n_ctx=N_CTX))
    assert [p.stage for p in progress if p.stage == "export"]
    assert r.candidate_bytes > 0 and r.kld_mean < 0.01
    assert not list((cache / "tmp").iterdir())
    # cancelled during the export, then during the candidate pass
    for stage in ("export", "candidate"):
        gen = iter_plan_quality(model, plan, text, n_ctx=N_CTX)
        for item in gen:
            if isinstance(item, QualityProgress) and item.stage == stage and item.done > 0:
                assert len(list((cache / "tmp").iterdir())) >= 1
                break
        gen.close()
        assert not list((cache / "tmp").iterdir()), stage


def test_plan_failure_leaves_no_file(models: dict[str, Path], cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quant_core.quality import plan_quality

    def broken(*args, **kwargs):
        raise QualityError("evaluation failed")
        yield

    monkeypatch.setattr(plan_quality, "iter_candidate_pass", broken)
    model, plan = _plan(models["base"])
    with pytest.raises(QualityError, match="evaluation failed"):
        list(iter_plan_quality(model, plan, models["text"].read_bytes(), n_ctx=N_CTX))
    assert not list((cache / "tmp").iterdir())


def test_cancelled_base_pass_leaves_no_cache_entry(models: dict[str, Path], cache: Path) -> None:
    gen = iter_quality(models["base"], models["other"], models["text"].read_bytes(), n_ctx=N_CTX)
    next(gen), next(gen)
    gen.close()
    assert not list(cache.glob("*.kld")) and not list(cache.glob(".*part"))


def test_cli_json_and_table(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(models["base"]), str(models["other"]), "--text", str(models["text"]), "--ctx", str(N_CTX)]
    assert main(["eval", *args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("ppl", "ppl_base", "kld_mean", "kld_median", "kld_p99", "same_top_p", "tokens", "candidate_bytes"):
        assert isinstance(doc[key], (int, float)), key
    assert 0 <= doc["same_top_p"] <= 1 and doc["candidate_bytes"] == models["other"].stat().st_size
    assert main(["eval", *args]) == 0
    out = capsys.readouterr().out
    assert "Mean    KLD:" in out and f"{doc['kld_mean']:10.6f}" in out and "Same top p:" in out


def test_cli_plan_form(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", str(models["base"]), "--preset", "Q8_0", "--text", str(models["text"]), "--ctx", str(N_CTX)]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    model, plan = _plan(models["base"])
    from quant_core.size import project_size

    assert doc["candidate_bytes"] == project_size(model, plan).file_bytes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["{missing}"], "no such candidate model file"),
        (["{wide}"], "vocabulary"),
        (["{other}", "--ctx", "512"], "at least 1024"),
        (["{other}", "--preset", "Q8_0"], "not both"),
        ([], "give CANDIDATE.gguf, or --preset"),
        (["{other}", "--text", "{missing}"], "cannot read text file"),
    ],
)
def test_cli_errors_are_one_line(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    names = {k: str(v) for k, v in models.items()} | {"missing": str(tmp_path / "missing")}
    argv = ["eval", str(models["base"]), *[e.format(**names) for e in extra]]
    if "--text" not in argv:
        argv += ["--text", str(models["text"])]
    argv += [] if "--ctx" in argv else ["--ctx", str(N_CTX)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("quant-explorer: error:") and message in err[-1]


def test_cli_without_runtime(models: dict[str, Path], capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from quant_core.quality import measure
    from quant_core.quality.errors import RuntimeMissingError

    def missing():
        raise RuntimeMissingError()

    monkeypatch.setattr(measure, "load_runtime", missing)
    argv = ["eval", str(models["base"]), str(models["other"]), "--text", str(models["text"])]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "quant-explorer: error: measuring quality needs llama.cpp's runtime: pip install 'quant-explorer[quality]'"
    )


def test_deterministic_logits_per_chunk(models: dict[str, Path]) -> None:
    """The same chunk gives the same logits whether decoded alone or with other sequences."""
    from quant_core.quality.runtime import ChunkEvaluator

    m = LlamaModel(models["base"])
    try:
        toks = m.tokenize(models["text"].read_bytes())[: 3 * N_CTX]
        together = ChunkEvaluator(m, N_CTX, threads=2)
        alone = ChunkEvaluator(m, N_CTX, threads=2, n_batch=N_CTX)
        try:
            a = list(together.iter_chunks(toks, 3))
            b = list(alone.iter_chunks(toks, 3))
        finally:
            together.close()
            alone.close()
        assert together.n_seq == 3 or (together.n_seq >= 3 and alone.n_seq == 1)
        for x, y in zip(a, b):
            assert x.shape == (scored_per_chunk(N_CTX), m.n_vocab)
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-4)
    finally:
        m.close()


def test_explicit_base_file_is_written_then_read(models: dict[str, Path], tmp_path: Path, cache: Path) -> None:
    """``--kl-divergence-base F`` as in llama-perplexity: written when missing, then read (its context wins)."""
    base_file = tmp_path / "base.kld"
    text = models["text"].read_bytes()
    _, first = _run(iter_quality(models["base"], models["other"], text, n_ctx=N_CTX, base_file=base_file))
    assert base_file.is_file() and not list(cache.glob("base-*.kld"))
    progress, again = _run(iter_quality(models["base"], models["other"], text, n_ctx=2 * N_CTX, base_file=base_file))
    assert {p.stage for p in progress} == {"candidate"}
    assert again.n_ctx == N_CTX and again == first
