"""llama-quantize's options and imatrix-dependent branches, beyond the golden preset files."""

from __future__ import annotations

from quant_core.plan import QuantOptions, build_plan, parse_tensor_type
from quant_core.rules import use_more_bits

from .synthetic import GOLDEN_MODELS, header_model

VIS_A = header_model(**GOLDEN_MODELS["vis-a"])  # 8 layers, GQA 4, untied


def _types(preset: str, has_imatrix: bool = False, **opts) -> dict[str, str]:
    return build_plan(VIS_A, QuantOptions(preset=preset, **opts), has_imatrix=has_imatrix).types()


def test_use_more_bits_layers() -> None:
    assert [i for i in range(8) if use_more_bits(i, 8)] == [0, 3, 6, 7]
    assert [i for i in range(32) if use_more_bits(i, 32)] == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]


def test_first_matching_pattern_wins_and_skips_the_mixture_counters() -> None:
    rules = (parse_tensor_type(r"blk\.0\.attn_v=q8_0"), parse_tensor_type("attn_v=q5_k"))
    t = _types("Q4_K_M", tensor_types=rules)
    assert t["blk.0.attn_v.weight"] == "Q8_0"
    assert all(t[f"blk.{i}.attn_v.weight"] == "Q5_K" for i in range(1, 8))
    # ffn_down keeps its counter: use_more_bits layers 0, 3, 6, 7 still get Q6_K
    assert [i for i in range(8) if t[f"blk.{i}.ffn_down.weight"] == "Q6_K"] == [0, 3, 6, 7]


def test_pattern_overrides_shift_later_use_more_bits_decisions() -> None:
    t = _types("Q4_K_M", tensor_types=(parse_tensor_type(r"blk\.0\.attn_v=q4_k"),))
    # blk.0 no longer counts, so blk.1 is counter 0 and gets Q6_K, as in llama-quantize
    assert [i for i in range(8) if t[f"blk.{i}.attn_v.weight"] == "Q6_K"] == [1, 4, 7]


def test_pure_gives_every_tensor_the_default_type() -> None:
    t = _types("Q4_K_M", pure=True)
    assert {v for k, v in t.items() if not k.endswith("norm.weight")} == {"Q4_K"}


def test_output_and_token_embedding_types() -> None:
    t = _types("Q4_K_M", output_tensor_type="Q8_0", token_embedding_type="Q6_K")
    assert (t["output.weight"], t["token_embd.weight"]) == ("Q8_0", "Q6_K")


def test_leave_output_tensor_keeps_source_type() -> None:
    assert _types("Q4_K_M", leave_output_tensor=True)["output.weight"] == "F16"


def test_imatrix_branches() -> None:
    assert _types("Q4_0", has_imatrix=True)["blk.0.ffn_down.weight"] == "Q4_1"
    assert _types("Q4_0")["blk.0.ffn_down.weight"] == "Q4_0"
    assert _types("IQ4_XS")["blk.0.ffn_down.weight"] == "Q5_K"
    assert _types("IQ4_XS", has_imatrix=True)["blk.0.ffn_down.weight"] == "IQ4_XS"


def test_float_presets_ignore_patterns() -> None:
    t = _types("F16", tensor_types=(parse_tensor_type("attn_v=q8_0"),))
    assert t["blk.0.attn_v.weight"] == "F16"


def test_requires_imatrix_flags() -> None:
    plan = build_plan(VIS_A, QuantOptions(preset="IQ2_XXS"))
    needs = {tp.name for tp in plan.tensors if tp.requires_imatrix}
    assert "blk.0.attn_q.weight" in needs
    assert "token_embd.weight" not in needs and "output.weight" not in needs
