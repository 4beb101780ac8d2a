"""Every preset picks exactly llama-quantize's per-tensor types (golden: llama-quantize --dry-run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant_core.ftypes import FILE_TYPES
from quant_core.plan import QuantOptions, build_plan

from .synthetic import GOLDEN_MODELS, header_model

PRESET_DIR = Path(__file__).resolve().parent.parent / "data" / "presets"


def _golden(model_name: str) -> dict:
    return json.loads((PRESET_DIR / f"{model_name}.json").read_text())["presets"]


def _cases() -> list:
    return [pytest.param(m, p, id=f"{m}-{p}") for m in GOLDEN_MODELS for p in _golden(m)]


@pytest.mark.parametrize("model_name,preset", _cases())
def test_preset_types_match_llama_quantize(model_name: str, preset: str) -> None:
    want = _golden(model_name)[preset]
    model = header_model(**GOLDEN_MODELS[model_name])
    plan = build_plan(model, QuantOptions(preset=preset))
    got = plan.types()
    assert set(got) == set(want["tensors"])
    wrong = {n: (got[n], t) for n, t in want["tensors"].items() if got[n] != t}
    assert not wrong, f"{len(wrong)} tensors differ (got, want): {dict(list(wrong.items())[:6])}"
    total = sum(tp.n_bytes for tp in plan.tensors)
    n_elements = sum(tp.source.n_elements for tp in plan.tensors)
    assert round(total / 1024 / 1024, 2) == pytest.approx(want["quant_mib"], abs=0.006)
    assert round(total * 8 / n_elements, 2) == pytest.approx(want["bpw"], abs=0.006)


def test_golden_covers_every_preset_but_mxfp4_moe() -> None:
    assert set(_golden("vis-a")) == set(FILE_TYPES) - {"MXFP4_MOE"}


def test_mxfp4_moe_on_a_dense_model_is_q8_0_everywhere() -> None:
    plan = build_plan(header_model(**GOLDEN_MODELS["vis-a"]), QuantOptions(preset="MXFP4_MOE"))
    quantized = {tp.type for tp in plan.tensors if tp.quantizable}
    assert quantized == {"Q8_0"}
