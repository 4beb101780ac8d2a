"""Why each tensor has its type, as data: the reason kind for every source of a type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant_core.cli import main
from quant_core.ftypes import FILE_TYPES, file_type
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan, parse_tensor_type
from quant_core.qtypes import qtype
from quant_core.reasons import Reason, ReasonKind

from .synthetic import GOLDEN_MODELS, header_model

VIS_A = header_model(**GOLDEN_MODELS["vis-a"])  # untied, every row a multiple of 256
VIS_B = header_model(**GOLDEN_MODELS["vis-b"])  # tied, ffn_down rows of 544: K-quants fall back
VIS_B_EVEN = header_model(**dict(GOLDEN_MODELS["vis-b"], n_ff=512))  # the same model without fallbacks


def _kinds(plan) -> dict[str, ReasonKind]:
    return {tp.name: tp.why.kind for tp in plan.tensors}


@pytest.mark.parametrize("preset", sorted(set(FILE_TYPES) - {"MXFP4_MOE"}))
def test_preset_default_and_mixture_rule_kinds(preset: str) -> None:
    default = file_type(preset).default_type
    for model in (VIS_A, VIS_B):
        for tp in build_plan(model, QuantOptions(preset=preset)).tensors:
            if not tp.quantizable:
                assert tp.why.kind is ReasonKind.NOT_QUANTIZABLE and tp.type == tp.source.src_type
                continue
            wanted = tp.why.fallback_from or tp.type
            assert tp.why.kind in (ReasonKind.PRESET_DEFAULT, ReasonKind.MIXTURE_RULE, ReasonKind.SHAPE_FALLBACK)
            if tp.why.kind is ReasonKind.PRESET_DEFAULT:
                assert tp.type == default, tp.name
            if wanted != default and tp.why.kind is not ReasonKind.SHAPE_FALLBACK:
                assert tp.why.kind is ReasonKind.MIXTURE_RULE, tp.name


@pytest.mark.parametrize("preset", sorted(set(FILE_TYPES) - {"MXFP4_MOE"}))
def test_shape_fallbacks_name_the_type_the_rules_wanted(preset: str) -> None:
    plan = build_plan(VIS_B, QuantOptions(preset=preset))
    wanted = build_plan(VIS_B_EVEN, QuantOptions(preset=preset)).types()  # n_ff does not steer the rules
    expected = {
        tp.name for tp in plan.tensors if tp.quantizable and tp.source.n_per_row % qtype(wanted[tp.name]).block_size
    }
    fell_back = {tp.name for tp in plan.tensors if tp.why.kind is ReasonKind.SHAPE_FALLBACK}
    assert fell_back == expected
    for name in fell_back:
        tp = plan.tensor(name)
        assert tp.why.fallback_from == wanted[name] != tp.type
        assert tp.source.n_per_row % qtype(tp.type).block_size == 0
    assert all(tp.why.fallback_from is None for tp in plan.tensors if tp.name not in fell_back)


def test_k_quant_presets_fall_back_on_every_ffn_down_of_544_rows() -> None:
    plan = build_plan(VIS_B, QuantOptions(preset="Q4_K_M"))
    fell_back = {tp.name for tp in plan.tensors if tp.why.kind is ReasonKind.SHAPE_FALLBACK}
    assert fell_back == {f"blk.{i}.ffn_down.weight" for i in range(32)}
    assert {plan.tensor(n).why.fallback_from for n in fell_back} == {"Q4_K", "Q6_K"}


def test_user_rule_pure_and_type_options() -> None:
    rule = parse_tensor_type(r"blk\.1\.attn_q=q8_0")
    plan = build_plan(
        VIS_A,
        QuantOptions(preset="Q4_K_M", tensor_types=(rule,), output_tensor_type="Q5_0", token_embedding_type="Q4_0"),
    )
    kinds = _kinds(plan)
    assert kinds["blk.1.attn_q.weight"] is ReasonKind.USER_RULE and plan.tensor("blk.1.attn_q.weight").type == "Q8_0"
    assert kinds["blk.0.attn_q.weight"] is ReasonKind.PRESET_DEFAULT
    assert kinds["output.weight"] is ReasonKind.OUTPUT_TENSOR_TYPE and plan.tensor("output.weight").type == "Q5_0"
    assert kinds["token_embd.weight"] is ReasonKind.TOKEN_EMBEDDING_TYPE
    pure = build_plan(VIS_A, QuantOptions(preset="Q4_K_M", pure=True))
    assert {tp.why.kind for tp in pure.tensors if tp.quantizable} == {ReasonKind.PURE}


def test_tied_embeddings_follow_the_output_tensor_type_option() -> None:
    plan = build_plan(VIS_B, QuantOptions(preset="Q4_K_M", output_tensor_type="Q8_0"))
    tp = plan.tensor("token_embd.weight")
    assert tp.type == "Q8_0" and tp.why.kind is ReasonKind.OUTPUT_TENSOR_TYPE


def test_user_rule_that_cannot_fit_falls_back_and_keeps_its_words() -> None:
    plan = build_plan(VIS_B, QuantOptions(preset="Q8_0", tensor_types=(parse_tensor_type("ffn_down=q4_k"),)))
    tp = plan.tensor("blk.3.ffn_down.weight")
    assert tp.type == "Q5_0" and tp.why.kind is ReasonKind.SHAPE_FALLBACK and tp.why.fallback_from == "Q4_K"
    assert "ffn_down=Q4_K" in tp.reason
    assert plan.tensor("blk.3.ffn_up.weight").why.kind is ReasonKind.PRESET_DEFAULT


def test_explicit_choice_over_a_fallback_keeps_the_preset_reason() -> None:
    name = "blk.0.ffn_down.weight"
    base = build_plan(VIS_B, QuantOptions(preset="Q4_K_M"))
    plan = build_plan(VIS_B, QuantOptions(preset="Q4_K_M"), {name: "Q8_0"})
    tp = plan.tensor(name)
    assert tp.type == "Q8_0" and tp.why.kind is ReasonKind.EXPLICIT and tp.why.fallback_from is None
    assert tp.preset_why == base.tensor(name).why and tp.preset_why.kind is ReasonKind.SHAPE_FALLBACK
    others = {n: k for n, k in _kinds(plan).items() if n != name}
    assert others == {n: k for n, k in _kinds(base).items() if n != name}


def test_reason_json() -> None:
    fallback = Reason(ReasonKind.MIXTURE_RULE, "x").fallen_back("Q6_K", 544, 256)
    assert fallback.as_json() == {
        "reason": "x; fallback from Q6_K: row length 544 not divisible by 256",
        "reason_kind": "shape_fallback",
        "fallback_from": "Q6_K",
    }
    assert Reason(ReasonKind.EXPLICIT, "mine").as_json() == {"reason": "mine", "reason_kind": "explicit"}


def test_plan_json_has_the_kinds(tied_odd_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(tied_odd_gguf), "Q4_K_M", "--json", "--tensor-type", "attn_q=q8_0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    plan = build_plan(open_model(tied_odd_gguf), QuantOptions(preset="Q4_K_M", tensor_types=(("attn_q", "Q8_0"),)))
    assert [t["reason_kind"] for t in doc["tensors"]] == [tp.why.kind.value for tp in plan.tensors]
    assert [t["reason"] for t in doc["tensors"]] == [tp.reason for tp in plan.tensors]
    kinds = {t["reason_kind"] for t in doc["tensors"]}
    assert {"user_rule", "mixture_rule", "preset_default", "shape_fallback", "not_quantizable"} <= kinds
    for t in doc["tensors"]:
        base = {"name", "type", "bytes", "reason", "reason_kind", "encoder", "encoder_reason"}
        assert set(t) == (base | {"fallback_from"} if t["reason_kind"] == "shape_fallback" else base)
        if "fallback_from" in t:
            assert t["fallback_from"] == plan.tensor(t["name"]).why.fallback_from != t["type"]


def test_cli_counts_fallbacks_by_kind_not_by_wording(
    small_gguf: Path, tied_odd_gguf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a rule whose own words say "fallback" is not a fallback
    assert main(["plan", str(small_gguf), "Q4_K_M", "--tensor-type", "attn_q|fallback=q8_0"]) == 0
    out = capsys.readouterr().out
    assert "rule attn_q|fallback=Q8_0" in out and "required fallback" not in out
    assert main(["plan", str(tied_odd_gguf), "Q4_K_M"]) == 0
    n = sum(
        tp.why.kind is ReasonKind.SHAPE_FALLBACK
        for tp in build_plan(open_model(tied_odd_gguf), QuantOptions(preset="Q4_K_M")).tensors
    )
    assert n > 0 and f"{n} tensor(s) required fallback quantization" in capsys.readouterr().out
