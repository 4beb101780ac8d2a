"""Compact tensor-type rules re-resolve to the hand-made plan and are much shorter than pins."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_core.compact_rules import compact_rules
from quant_core.model import Model
from quant_core.plan import Plan, QuantOptions, build_plan, parse_tensor_type, type_problem
from quant_core.recipe import Recipe, llama_quantize_args, readable_recipe
from quant_core.regex_guard import check_pattern

from .synthetic import GOLDEN_MODELS, header_model

_MODELS = {name: header_model(**spec) for name, spec in GOLDEN_MODELS.items()}
_TYPES = ("Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q5_0", "Q4_0", "F16")


def _resolve(model: Model, plan: Plan, rules: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return build_plan(model, replace(plan.options, tensor_types=rules), has_imatrix=plan.has_imatrix).types()


def _hand_plan(model: Model, preset: str, explicit: dict[str, str]) -> Plan:
    base = build_plan(model, QuantOptions(preset=preset))
    allowed = {n: t for n, t in explicit.items() if type_problem(base.tensor(n), t) is None}
    return build_plan(model, QuantOptions(preset=preset), allowed)


@st.composite
def _hand_mix(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    model_name = draw(st.sampled_from(sorted(_MODELS)))
    names = [tp.name for tp in build_plan(_MODELS[model_name], QuantOptions()).tensors if tp.quantizable]
    chosen = draw(st.lists(st.sampled_from(names), max_size=40, unique=True))
    preset = draw(st.sampled_from(["Q4_K_M", "Q3_K_M", "Q5_K_S", "Q2_K", "Q6_K"]))
    return model_name, preset, {n: draw(st.sampled_from(_TYPES)) for n in chosen}


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_hand_mix())
def test_compact_rules_re_resolve_to_the_same_plan(mix: tuple[str, str, dict[str, str]]) -> None:
    model_name, preset, explicit = mix
    model = _MODELS[model_name]
    plan = _hand_plan(model, preset, explicit)
    rules = compact_rules(model, plan)
    assert _resolve(model, plan, rules) == plan.types()
    for pattern, t in rules:
        check_pattern(pattern)  # every generated pattern passes the regex guard
        assert parse_tensor_type(f"{pattern}={t}") == (pattern, t)  # and survives llama's parse


def test_a_whole_category_at_one_type_is_one_rule() -> None:
    model = _MODELS["vis-a"]
    n = model.n_layer
    plan = build_plan(model, QuantOptions(), {f"blk.{i}.attn_v.weight": "Q6_K" for i in range(n)})
    rules = compact_rules(model, plan)
    assert len(rules) == 1
    pattern, t = rules[0]
    assert t == "Q6_K"
    reach = {name for name in plan.types() if re.search(pattern, name)}
    assert reach == {f"blk.{i}.attn_v.weight" for i in range(n)}


def test_a_set_of_layers_is_one_alternation() -> None:
    model = _MODELS["vis-a"]
    explicit = {f"blk.{i}.attn_q.weight": "Q8_0" for i in (0, 3, 7)}
    plan = build_plan(model, QuantOptions(), explicit)
    rules = compact_rules(model, plan)
    assert rules == ((r"blk\.(0|3|7)\.attn_q", "Q8_0"),)


def test_output_rule_does_not_reach_attn_output() -> None:
    model = _MODELS["vis-a"]
    plan = build_plan(model, QuantOptions(), {"output.weight": "Q8_0"})
    (pattern, _), *_ = compact_rules(model, plan)
    reach = {name for name in plan.types() if re.search(pattern, name)}
    assert reach == {"output.weight"}


def test_kinds_sharing_layers_and_type_share_a_rule() -> None:
    model = _MODELS["vis-a"]
    explicit = {f"blk.{i}.{k}.weight": "Q8_0" for i in (1, 2) for k in ("attn_q", "attn_k")}
    plan = build_plan(model, QuantOptions(), explicit)
    rules = compact_rules(model, plan)
    assert len(rules) == 1
    assert _resolve(model, plan, rules) == plan.types()


@pytest.mark.parametrize("model_name", sorted(_MODELS))
def test_much_shorter_than_one_rule_per_tensor(model_name: str) -> None:
    model = _MODELS[model_name]
    base = build_plan(model, QuantOptions())
    explicit = {tp.name: "Q8_0" for tp in base.tensors if tp.quantizable and tp.source.category.startswith("attn_")}
    plan = _hand_plan(model, "Q4_K_M", explicit)
    rules = compact_rules(model, plan)
    assert _resolve(model, plan, rules) == plan.types()
    assert len(rules) * 5 <= len(plan.explicit)


def test_command_and_readable_recipe_use_the_compact_rules() -> None:
    model = _MODELS["vis-b"]
    plan = build_plan(model, QuantOptions(), {f"blk.{i}.attn_v.weight": "Q8_0" for i in range(model.n_layer)})
    args = llama_quantize_args(model, plan, "in.gguf", "out.gguf")
    assert args.count("--tensor-type") == len(compact_rules(model, plan)) == 1
    recipe = Recipe.from_json(readable_recipe(model, plan).to_json())
    assert recipe.explicit == {}
    assert build_plan(model, recipe.options).types() == plan.types()
