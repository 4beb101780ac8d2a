"""Recipes round-trip, and their llama-quantize command reproduces the plan."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from quant_core import recipe as recipe_module
from quant_core.model import open_model
from quant_core.plan import PlanError, QuantOptions, build_plan
from quant_core.reasons import ReasonKind
from quant_core.recipe import Recipe, RecipeError, check_options, llama_quantize_args

from .synthetic import GOLDEN_MODELS, header_model


def _options_from_args(args: list[str]) -> QuantOptions:
    """Read back the --tensor-type entries and preset of a generated command line."""
    rules = tuple(tuple(args[i + 1].rsplit("=", 1)) for i, a in enumerate(args) if a == "--tensor-type")
    return QuantOptions(preset=args[-1], tensor_types=tuple((p, t.upper()) for p, t in rules))


def test_recipe_round_trips(tmp_path: Path) -> None:
    recipe = Recipe(
        QuantOptions(
            preset="Q5_K_M",
            tensor_types=(("attn_v", "Q8_0"), (r"blk\.[0-3]\.ffn_down", "Q6_K")),
            output_tensor_type="Q8_0",
            pure=True,
            override_kv=("general.name=str:x",),
            prune_layers=(2, 5),
            include_weights=("attn",),
        ),
        {"blk.0.attn_q.weight": "Q6_K"},
    )
    path = tmp_path / "r.json"
    recipe.save(path)
    assert Recipe.load(path) == recipe


@pytest.mark.parametrize(
    "text,match",
    [
        ("{", "invalid JSON"),
        ('{"hello": 1}', "not a quant-explorer recipe"),
        ('{"format": "quant-explorer-recipe", "options": {"bogus": 1}}', "unknown recipe option"),
        ('{"format": "quant-explorer-recipe", "options": {"preset": "Q9_K"}}', "unknown preset"),
        ('{"format": "quant-explorer-recipe", "explicit": {"a": "Q17"}}', "invalid type"),
    ],
)
def test_bad_recipes_are_rejected(text: str, match: str) -> None:
    with pytest.raises((RecipeError, PlanError, Exception), match=match):
        Recipe.from_json(text)


RECIPE = '{"format": "quant-explorer-recipe", "version": 1, %s}'


@pytest.mark.parametrize(
    "body,message",
    [
        ('"options": {"override_kv": ["general.name"]}', "recipe option 'override_kv': malformed --override-kv"),
        ('"options": {"override_kv": ["a.b=int:x"]}', "recipe option 'override_kv': .*invalid int value 'x'"),
        ('"options": {"override_kv": "a=str:b"}', "recipe option 'override_kv': expected a list of strings"),
        ('"options": {"output_tensor_type": "Q17"}', "recipe option 'output_tensor_type': invalid type 'Q17'"),
        ('"options": {"token_embedding_type": 8}', "recipe option 'token_embedding_type': expected a string"),
        ('"options": {"tensor_types": ["attn_v=q99"]}', "recipe option 'tensor_types': invalid type"),
        ('"options": {"tensor_types": ["attn_(v=q8_0"]}', "recipe option 'tensor_types': invalid regular expression"),
        ('"options": {"tensor_types": ["attn_v"]}', "recipe option 'tensor_types': malformed tensor type"),
        ('"options": {"pure": "yes"}', "recipe option 'pure': expected true or false"),
        ('"options": {"prune_layers": [1, -2]}', "recipe option 'prune_layers': expected a list of layer numbers"),
        ('"options": {"include_weights": [1]}', "recipe option 'include_weights': expected a list of strings"),
        ('"options": {"imatrix": 3}', "recipe option 'imatrix': expected a string"),
        ('"options": {"preset": null}', "recipe option 'preset': expected a string"),
        ('"options": []', "recipe 'options' must be an object"),
        ('"explicit": {"blk.0.attn_q.weight": 6}', "recipe 'explicit' entry 'blk.0.attn_q.weight': expected a string"),
    ],
)
def test_recipe_values_are_checked_when_read(body: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message) as err:
        Recipe.from_json(RECIPE % body)
    assert "\n" not in str(err.value)


def test_every_option_has_a_reader_and_check_options_names_the_field() -> None:
    assert set(recipe_module._OPTION_READERS) == {f.name for f in fields(QuantOptions)}
    check_options(QuantOptions(override_kv=("general.name=str:x",), prune_layers=(1,)))
    with pytest.raises(RecipeError, match=r"recipe option 'override_kv': .*type must be int, float, bool or str"):
        check_options(QuantOptions(override_kv=("general.name=text:x",)))


def test_explicit_choice_changes_only_that_tensor() -> None:
    model = header_model(**GOLDEN_MODELS["vis-a"])
    base = build_plan(model, QuantOptions(preset="Q4_K_M"))
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"), {"blk.0.attn_v.weight": "Q8_0"})
    changed = {n for n, t in plan.types().items() if base.types()[n] != t}
    assert changed == {"blk.0.attn_v.weight"}
    assert plan.tensor("blk.0.attn_v.weight").why.kind is ReasonKind.EXPLICIT


def test_llama_quantize_command_reproduces_explicit_choices() -> None:
    model = header_model(**GOLDEN_MODELS["vis-a"])
    explicit = {"blk.0.attn_v.weight": "Q8_0", "blk.5.ffn_down.weight": "Q2_K"}
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"), explicit)
    args = llama_quantize_args(model, plan, "in.gguf", "out.gguf")
    upstream = build_plan(model, _options_from_args(args))
    assert upstream.types() == plan.types()


def test_incompatible_explicit_type_is_refused() -> None:
    model = header_model(**GOLDEN_MODELS["vis-b"])  # n_ff 544: ffn_down rows not divisible by 256
    with pytest.raises(PlanError, match="not a multiple"):
        build_plan(model, QuantOptions(), {"blk.0.ffn_down.weight": "Q4_K"})
    with pytest.raises(PlanError, match="never quantizes"):
        build_plan(model, QuantOptions(), {"blk.0.attn_norm.weight": "Q8_0"})


def test_plan_of_a_real_file_matches_header_model(small_gguf: Path) -> None:
    from .conftest import SMALL

    real = build_plan(open_model(small_gguf), QuantOptions(preset="Q3_K_M")).types()
    assert real == build_plan(header_model(**SMALL), QuantOptions(preset="Q3_K_M")).types()
