"""On the trained demo model, the table ranks real single-tensor KLD changes it was not fitted to.

Pairs (tensor, type) outside the calibration are measured with only that tensor changed and
compared by rank with the prediction (tools/validate_sensitivity.py does the same with more pairs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from quant_core.assets import DEMO_EVAL_TEXT, DEMO_MODEL
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import cache as quality_cache
from quant_core.quality import read_text_file
from quant_core.sensitivity import SensitivitySettings, SensitivityTable, iter_sensitivity, spearman
from quant_core.sensitivity.validate import iter_validation, validation_pairs

PAIRS = 12
MIN_SPEARMAN = 0.75


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(quality_cache.ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.skipif(not DEMO_MODEL.is_file() or not DEMO_EVAL_TEXT.is_file(), reason="no trained demo model")
def test_predicted_costs_rank_measured_ones_on_the_demo_model():
    model = open_model(DEMO_MODEL)
    text = read_text_file(DEMO_EVAL_TEXT)
    plan = build_plan(model, QuantOptions())
    settings = SensitivitySettings.for_model(model, chunks=2)
    table = list(iter_sensitivity(model, plan, text, settings=settings))[-1]
    assert isinstance(table, SensitivityTable)
    pairs = validation_pairs(table, plan, PAIRS, seed=1)
    assert len(pairs) == PAIRS
    assert all(t not in table.probes[n] for n, t in pairs)
    results = list(iter_validation(model, plan, table, pairs, text, settings))[-1]
    rho = spearman([r.predicted for r in results], [r.measured for r in results])
    assert rho >= MIN_SPEARMAN, [(r.name, r.type, r.predicted, r.measured) for r in results]
