"""Per-tensor encoders in the plan, recipes and the llama-quantize command."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from quant_core.encoders import (
    ENCODER_KEY,
    HQQ_COUNT_KEY,
    encoder_metadata,
    hqq_tensors,
    identity_note,
    parse_tensor_encoder,
    with_tensor_encoders,
)
from quant_core.errors import QuantError
from quant_core.layout import compute_layout
from quant_core.plan import QuantOptions, build_plan, with_explicit
from quant_core.qtypes import HQQ_TYPES
from quant_core.recipe import Recipe, RecipeError, llama_quantize_command
from quant_core.size import project_size

from .hqq_fake_policy import use_policy
from .synthetic import GOLDEN_MODELS, header_model

MODEL = header_model(**GOLDEN_MODELS["vis-a"])


def _plan(**options: object):
    return build_plan(MODEL, QuantOptions(preset="Q4_K_M", **options))


def test_default_plan_uses_ggml_everywhere_and_writes_no_key() -> None:
    plan = _plan()
    assert {tp.encoder for tp in plan.tensors} == {"ggml"}
    assert hqq_tensors(plan) == [] and identity_note(plan) is None and encoder_metadata(plan) == []
    assert "#" not in llama_quantize_command(MODEL, plan, "in.gguf", "out.gguf")


def test_global_hqq_applies_to_encodable_types_only_and_keeps_the_types() -> None:
    ggml, hqq = _plan(), _plan(encoder="hqq")
    assert hqq.types() == ggml.types()
    for tp in hqq.tensors:
        encodable = tp.quantizable and tp.converts and tp.type in HQQ_TYPES
        assert tp.encoder == ("hqq" if encodable else "ggml"), tp.name
        if tp.quantizable and not encodable:
            assert "cannot encode" in tp.encoder_why and tp.type in tp.encoder_why
    assert {hqq.tensor(n).type for n in hqq_tensors(hqq)} == {"Q4_K"}
    assert any(tp.type == "Q6_K" and tp.encoder == "ggml" for tp in hqq.tensors)
    assert project_size(MODEL, hqq).tensor_bytes == project_size(MODEL, ggml).tensor_bytes


def test_hqq_is_recorded_in_the_metadata_and_the_projection_counts_it() -> None:
    plan = _plan(encoder="hqq")
    fields = {f.key: f.value for f in compute_layout(MODEL, plan).metadata}
    assert fields[ENCODER_KEY] == b"hqq" and fields[HQQ_COUNT_KEY] == len(hqq_tensors(plan))
    assert ENCODER_KEY not in {f.key for f in compute_layout(MODEL, _plan()).metadata}
    assert project_size(MODEL, plan).file_bytes > project_size(MODEL, _plan()).file_bytes


def test_rules_first_match_wins_and_per_tensor_choice_beats_rules_and_default() -> None:
    plan = _plan(
        encoder="hqq",
        tensor_encoders=(parse_tensor_encoder(r"blk\.0\.=ggml"), parse_tensor_encoder("ffn_=hqq")),
        encoders=(("blk.1.attn_q.weight", "ggml"),),
    )
    assert plan.tensor("blk.0.ffn_gate.weight").encoder == "ggml"  # first rule
    assert "blk\\.0\\.=ggml" in plan.tensor("blk.0.ffn_gate.weight").encoder_why
    assert plan.tensor("blk.2.ffn_gate.weight").encoder == "hqq"
    assert plan.tensor("blk.1.attn_q.weight").encoder == "ggml"  # per tensor
    assert plan.tensor("blk.2.attn_q.weight").encoder == "hqq"  # default


def test_per_tensor_hqq_on_a_type_it_cannot_encode_says_so_without_error() -> None:
    plan = _plan(encoders=(("output.weight", "hqq"), ("blk.3.attn_q.weight", "hqq")))
    assert plan.tensor("output.weight").type == "Q6_K"
    assert plan.tensor("output.weight").encoder == "ggml"
    assert "HQQ cannot encode Q6_K" in plan.tensor("output.weight").encoder_why
    assert hqq_tensors(plan) == ["blk.3.attn_q.weight"]


def test_encoder_follows_an_explicit_type_change() -> None:
    options = QuantOptions(preset="Q4_K_M", encoders=(("blk.3.attn_q.weight", "hqq"),))
    plan = build_plan(MODEL, options, {"blk.3.attn_q.weight": "Q8_0"})
    assert plan.tensor("blk.3.attn_q.weight").encoder == "ggml"
    assert with_explicit(plan, {"blk.3.attn_q.weight": "Q5_K"}).tensor("blk.3.attn_q.weight").encoder == "hqq"


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(encoder="gptq"), "invalid encoder 'gptq'"),
        (dict(encoders=(("blk.0.attn_q.weight", "HQQ2"),)), "invalid encoder 'HQQ2'"),
        (dict(encoders=(("blk.99.attn_q.weight", "hqq"),)), "unknown tensor 'blk.99.attn_q.weight'"),
    ],
)
def test_bad_encoder_choices_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(QuantError, match=message) as err:
        _plan(**options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("entry", ["ffn_", "ffn_=", "ffn_(=hqq", "(a+)+=hqq", "ffn_=awq"])
def test_bad_tensor_encoder_rules_are_refused(entry: str) -> None:
    with pytest.raises(QuantError):
        parse_tensor_encoder(entry)


def test_auto_mixed_tensors_take_hqq_only_where_it_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    use_policy(monkeypatch, {("Q4_K", False): (0.0005, 0.0006), ("Q5_K", False): (0.0002, 0.0001)})
    base = _plan(encoder="hqq")
    chosen = {"blk.0.attn_q.weight": "Q4_K", "blk.1.attn_q.weight": "Q5_K"}
    plan = with_explicit(base, chosen, auto_mixed=chosen.keys())
    assert plan.tensor("blk.0.attn_q.weight").encoder == "ggml"
    why = plan.tensor("blk.0.attn_q.weight").encoder_why
    assert "did not win" in why and "Q4_K without an importance matrix" in why
    assert plan.tensor("blk.1.attn_q.weight").encoder == "hqq"
    pinned = replace(base, options=with_tensor_encoders(base.options, ["blk.0.attn_q.weight"], "hqq"))
    by_hand = with_explicit(pinned, chosen, auto_mixed=chosen.keys())
    assert by_hand.tensor("blk.0.attn_q.weight").encoder == "hqq"  # a per-tensor choice is honoured


def test_recipe_with_encoders_round_trips_as_version_2_and_plain_recipes_stay_version_1() -> None:
    options = QuantOptions(
        preset="Q4_K_M",
        encoder="hqq",
        tensor_encoders=(("ffn_down", "ggml"),),
        encoders=(("blk.0.attn_q.weight", "ggml"),),
    )
    text = Recipe(options).to_json()
    doc = json.loads(text)
    assert doc["version"] == 2
    assert doc["options"]["encoders"] == {"blk.0.attn_q.weight": "ggml"}
    assert doc["options"]["tensor_encoders"] == ["ffn_down=ggml"]
    assert Recipe.from_json(text) == Recipe(options)
    plain = json.loads(Recipe(QuantOptions(preset="Q4_K_M")).to_json())
    assert plain["version"] == 1 and not {"encoder", "tensor_encoders", "encoders"} & set(plain["options"])


def test_old_recipes_load_unchanged_and_bad_encoder_values_are_refused() -> None:
    old = '{"format": "quant-explorer-recipe", "version": 1, "options": {"preset": "Q4_K_M"}, "explicit": {}}'
    assert Recipe.from_json(old) == Recipe(QuantOptions(preset="Q4_K_M"))
    bad = '{"format": "quant-explorer-recipe", "version": 2, "options": {"encoders": {"a": "gptq"}}}'
    with pytest.raises(RecipeError, match="recipe option 'encoders': invalid encoder 'gptq'"):
        Recipe.from_json(bad)


def test_llama_quantize_command_says_it_is_not_byte_identical_with_hqq() -> None:
    plan = _plan(encoder="hqq")
    text = llama_quantize_command(MODEL, plan, "in.gguf", "out.gguf")
    first, command = text.split("\n")
    assert first.startswith("# not byte-identical to llama-quantize")
    assert f"HQQ-encoded tensors: {len(hqq_tensors(plan))}" in first
    assert command.startswith("llama-quantize ")
