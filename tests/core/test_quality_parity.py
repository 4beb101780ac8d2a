"""Our KL-divergence measurement equals llama-perplexity's on the demo model.

tests/data/quality/llama_perplexity.json holds what llama-perplexity (b11312, built by
tools/build_llama_tools.sh) printed for several mixes; tools/record_llama_perplexity.py
regenerates it. Each candidate is exported again here with quant_core (same sha256 as the file
llama-perplexity measured) and measured in-process against our own base pass.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import closing
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")

from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import QualityReport, iter_quality, read_text_file
from quant_core.quality import cache as quality_cache

REPO = Path(__file__).resolve().parents[2]
RECORD = json.loads((REPO / "tests" / "data" / "quality" / "llama_perplexity.json").read_text())
PARITY_MIXES = ("Q2_K", "Q4_K_M", "Q8_0", "hand")

pytestmark = pytest.mark.slow


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    model, text = REPO / RECORD["model"]["path"], REPO / RECORD["text"]["path"]
    assert _sha256(model) == RECORD["model"]["sha256"], "demo model changed: run tools/record_llama_perplexity.py"
    assert _sha256(text) == RECORD["text"]["sha256"], "evaluation text changed: run tools/record_llama_perplexity.py"
    work = tmp_path_factory.mktemp("parity")
    return {"model": model, "text": read_text_file(text), "work": work}


def _measure(setup: dict, candidate: Path, monkeypatch: pytest.MonkeyPatch) -> QualityReport:
    monkeypatch.setenv(quality_cache.ENV_VAR, str(setup["work"] / "cache"))  # base pass shared by the mixes
    items = list(
        iter_quality(
            setup["model"], candidate, setup["text"], RECORD["n_ctx"], RECORD["chunks"], threads=RECORD["threads"]
        )
    )
    return items[-1]


def test_our_base_file_is_llama_perplexitys(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same tokens, same logits, same 16-bit records: the very bytes llama-perplexity writes."""
    _measure(setup, setup["model"], monkeypatch)
    (base_file,) = (setup["work"] / "cache").glob("base-*.kld")
    assert base_file.stat().st_size == RECORD["base"]["bytes"]
    assert _sha256(base_file) == RECORD["base"]["sha256"]


@pytest.mark.parametrize("name", PARITY_MIXES)
def test_kld_and_ppl_equal_llama_perplexity(setup: dict, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mix = next(m for m in RECORD["mixes"] if m["name"] == name)
    model = open_model(setup["model"])
    options = QuantOptions(preset=mix["preset"], tensor_types=tuple(tuple(t) for t in mix.get("tensor_types", ())))
    candidate = setup["work"] / f"{name}.gguf"
    with closing(iter_export(model, build_plan(model, options), candidate, threads=RECORD["threads"])) as progress:
        for _ in progress:
            pass
    assert _sha256(candidate) == mix["sha256"]  # the file llama-perplexity measured
    r = _measure(setup, candidate, monkeypatch)
    ref = mix["stats"]
    assert r.tokens == ref["tokens"]
    assert r.n_same_top == ref["n_same_top"]
    assert abs(r.kld_mean - ref["kld_mean"]) <= max(0.005 * ref["kld_mean"], 1e-6)
    assert r.ppl == pytest.approx(ref["ppl"], rel=5e-4)
    assert r.ppl_base == pytest.approx(ref["ppl_base"], rel=5e-4)
    # printed with 6 decimals: agree to the last printed digit (plus one for rounding)
    for key in ("kld_median", "kld_p99", "kld_max"):
        assert abs(getattr(r, key) - ref[key]) <= max(0.005 * ref[key], 2e-6), key
    assert 100 * r.same_top_p == pytest.approx(ref["same_top_p_pct"], abs=6e-4)
    assert 100 * r.rms_dp == pytest.approx(ref["rms_dp_pct"], abs=2e-3)


def test_llama_perplexity_reads_our_base_file() -> None:
    """Recorded both ways: llama-perplexity given our base pass prints what it prints with its own."""
    ours = RECORD["llama_reads_our_base"]
    mix = next(m for m in RECORD["mixes"] if m["name"] == ours["mix"])
    assert "base-ours.kld" in " ".join(ours["command"])
    assert ours["stats"] == mix["stats"]
