"""Sensitivity table: shape and validity, cache, resume after cancel, command line.

A tiny random-weight llama that llama.cpp loads (``quality_fixtures``): the numbers mean
little, but every step runs for real (weight errors from the real quantizer, KLD runs through
export and llama.cpp).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")


from quant_core.cli.main import main
from quant_core.imatrix import Imatrix
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import cache as quality_cache
from quant_core.sensitivity import (
    SensitivitySettings,
    SensitivityTable,
    candidate_types,
    iter_sensitivity,
    spearman,
)
from quant_core.sensitivity import core as sens_core

from .quality_fixtures import sample_text, write_tiny_llama

N_CTX = 128
SETTINGS = SensitivitySettings(n_ctx=N_CTX, chunks=2, sample_elements=4096, slope_units=2)
OPTIONS = QuantOptions(preset="Q4_K_M")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sens")
    text = d / "text.txt"
    text.write_bytes(sample_text(3 * N_CTX) + b"\n")
    return {
        "model": write_tiny_llama(d / "tiny.gguf"),
        "text": text,
        "odd": write_tiny_llama(d / "odd.gguf", n_embd=96, n_ff=192),
    }


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.getbasetemp() / "sens-cache"
    monkeypatch.setenv(quality_cache.ENV_VAR, str(folder))
    return folder


def _table(files: dict[str, Path], **kw) -> SensitivityTable:
    model = open_model(files["model"])
    items = list(iter_sensitivity(model, OPTIONS, files["text"].read_bytes()[:-1], settings=SETTINGS, **kw))
    assert isinstance(items[-1], SensitivityTable)
    return items[-1]


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    calls: dict[str, list] = {"runs": [], "errors": []}
    real_kld, real_errors = sens_core.iter_kld, sens_core.tensor_errors

    def kld(model, plan, changes, *args, **kw):
        calls["runs"].append(dict(changes))
        return real_kld(model, plan, changes, *args, **kw)

    def errors(model, t, *args, **kw):
        calls["errors"].append(t.name)
        return real_errors(model, t, *args, **kw)

    monkeypatch.setattr(sens_core, "iter_kld", kld)
    monkeypatch.setattr(sens_core, "tensor_errors", errors)
    return calls


def test_table_has_every_quantizable_tensor_with_only_valid_types(files):
    table = _table(files)
    model = open_model(files["model"])
    plan = build_plan(model, OPTIONS)
    quantizable = [tp for tp in plan.tensors if tp.quantizable]
    assert set(table.costs) == {tp.name for tp in quantizable}
    for tp in quantizable:
        assert set(table.costs[tp.name]) == set(candidate_types(tp, None))
        assert all(c >= 0 and math.isfinite(c) for c in table.costs[tp.name].values())
        refused = ("IQ1_S", "IQ2_XXS", "IQ2_XS")  # ggml refuses these without an imatrix
        if tp.name.startswith("blk."):  # llama-quantize too, but not for token_embd / output
            refused += ("IQ1_M", "IQ2_S", "IQ3_XXS")
        assert not set(refused) & set(table.costs[tp.name])
    assert 0.5 <= table.beta <= 1.5
    assert table.measured and all(v >= 0 for v in table.measured.values())


def test_costs_fall_with_more_bits(files):
    table = _table(files)
    ladder = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0")
    for name, per in table.costs.items():
        costs = [per[t] for t in ladder]
        assert all(a > b for a, b in itertools.pairwise(costs)), (name, costs)
        assert per["F16"] == 0.0  # the source type: copied


def test_candidates_respect_block_and_imatrix(files):
    model = open_model(files["odd"])  # rows of 96 (and 192): no 256-blocks
    plan = build_plan(model, OPTIONS)
    tp = plan.tensor("blk.0.attn_q.weight")
    types = candidate_types(tp, None)
    assert "Q4_K" not in types and "IQ4_XS" not in types and "Q4_0" in types and "IQ4_NL" in types
    assert "IQ2_XXS" not in types
    values = {t.name: np.ones(t.n_per_row, np.float32) for t in model.tensors if t.name.startswith("blk.")}
    imatrix = Imatrix(values, [], 1, 512, "fake", "gguf")
    with_imatrix = candidate_types(tp, imatrix)
    assert "IQ4_NL" in with_imatrix and "IQ2_XXS" not in with_imatrix  # IQ2_XXS needs 256-blocks
    big = build_plan(open_model(files["model"]), OPTIONS)
    q = big.tensor("blk.0.attn_q.weight")
    assert "IQ2_XXS" not in candidate_types(q, None)
    imatrix = Imatrix({q.name: np.ones(q.source.n_per_row, np.float32)}, [], 1, 512, "fake", "gguf")
    assert "IQ2_XXS" in candidate_types(q, imatrix)
    assert "IQ2_XXS" not in candidate_types(big.tensor("blk.0.ffn_up.weight"), imatrix)  # no entry


def test_second_computation_is_read_from_the_cache(files, monkeypatch):
    first = _table(files)
    calls = _counting(monkeypatch)
    second = _table(files)
    assert calls == {"runs": [], "errors": []}
    assert second.costs == first.costs


def test_cancelled_computation_resumes_without_measuring_again(files, tmp_path, monkeypatch):
    monkeypatch.setenv(quality_cache.ENV_VAR, str(tmp_path / "fresh"))
    calls = _counting(monkeypatch)
    model = open_model(files["model"])
    text = files["text"].read_bytes()[:-1]
    gen = iter_sensitivity(model, OPTIONS, text, settings=SETTINGS)
    for item in gen:
        if item.stage == "measure" and len(calls["runs"]) == 4:
            break
    gen.close()  # cancel half-way
    done_runs = [tuple(sorted(c.items())) for c in calls["runs"][:3]]  # the fourth was interrupted
    assert len(calls["errors"]) == sum(tp.quantizable for tp in build_plan(model, OPTIONS).tensors)
    calls["runs"].clear()
    calls["errors"].clear()
    table = list(iter_sensitivity(model, OPTIONS, text, settings=SETTINGS))[-1]
    assert calls["errors"] == []
    again = [tuple(sorted(c.items())) for c in calls["runs"]]
    assert not set(again) & set(done_runs)
    assert again  # the rest was measured
    assert isinstance(table, SensitivityTable)
    assert not list((tmp_path / "fresh" / "tmp").glob("*"))  # no temporary export left behind


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)


def test_cli_prints_the_table_as_json(files, capsys):
    args = [
        "sensitivity",
        str(files["model"]),
        "--text",
        str(files["text"]),
        "--ctx",
        str(N_CTX),
        "--chunks",
        "2",
        "--json",
    ]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {t["name"] for t in doc["tensors"]}
    assert "blk.1.ffn_down.weight" in names and "output.weight" in names
    for t in doc["tensors"]:
        assert t["sensitivity"] > 0
        assert all(v >= 0 for v in t["costs"].values())
        assert t["costs"]["Q2_K"] > t["costs"]["Q8_0"]


def test_cli_table_and_bad_input(files, capsys):
    args = ["sensitivity", str(files["model"]), "--text", str(files["text"]), "--ctx", str(N_CTX), "--chunks", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "blk.0.attn_v.weight" in out and "Q4_K" in out
    assert main([*args, "--prune-layers", "0"]) == 1
    assert "prune" in capsys.readouterr().err


def test_an_imatrix_weights_the_errors_and_enables_its_types(files):
    model = open_model(files["model"])
    rng = np.random.default_rng(0)
    values = {
        t.name: rng.uniform(0.1, 10.0, t.n_per_row).astype(np.float32)
        for t in model.tensors
        if t.name.startswith("blk.") and t.name.endswith("weight") and len(t.shape) > 1
    }
    imatrix = Imatrix(values, [], 1, 512, "fake", "gguf")
    plain = _table(files)
    weighted = _table(files, imatrix=imatrix)
    assert "IQ2_XXS" in weighted.costs["blk.0.ffn_up.weight"]
    assert "IQ2_XXS" not in weighted.costs["token_embd.weight"]  # no importance values for it
    assert weighted.errors["blk.0.ffn_up.weight"]["Q4_K"] != plain.errors["blk.0.ffn_up.weight"]["Q4_K"]


def test_missing_runtime_is_one_line_before_any_work(files, monkeypatch, capsys):
    from quant_core.quality.errors import RuntimeMissingError

    def missing():
        raise RuntimeMissingError()

    calls = _counting(monkeypatch)
    monkeypatch.setattr(sens_core, "load_runtime", missing)
    args = ["sensitivity", str(files["model"]), "--text", str(files["text"]), "--ctx", str(N_CTX), "--no-cache"]
    assert main(args) == 1
    assert "quant-explorer[quality]" in capsys.readouterr().err
    assert calls == {"runs": [], "errors": []}
