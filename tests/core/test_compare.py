"""Comparing a plan with a reference GGUF and cloning its mix (quant_core.compare / clone)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from fractions import Fraction
from math import floor
from pathlib import Path

import pytest

from quant_core.assets import DEMO_MODEL
from quant_core.clone import apply_clone, clone_mix
from quant_core.compare import compare, counterparts, depth_map, open_reference
from quant_core.model import ModelError, TensorInfo, open_model, tensor_category
from quant_core.plan import QuantOptions, build_plan
from quant_core.qtypes import qtype
from quant_core.reasons import ReasonKind
from quant_core.size import project_size

from .plan_header import write_plan_header
from .synthetic import header_model

SHAPE = dict(n_embd=256, n_ff=512, n_vocab=320, n_head=4, n_head_kv=1, tied=False)


def _with_types(model, plan, types: dict[str, str]):
    return build_plan(model, plan.options, {**plan.explicit, **types})


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 26, 32])
@pytest.mark.parametrize("m", [1, 2, 4, 8, 18, 32, 80])
def test_depth_map_is_nearest_relative_depth(n: int, m: int) -> None:
    mapped = [depth_map(i, n, m) for i in range(n)]
    if n > 1 and m > 1:
        expected = [floor(Fraction(i * (m - 1), n - 1) + Fraction(1, 2)) for i in range(n)]
        assert mapped == expected
        assert mapped[0] == 0 and mapped[-1] == m - 1
    assert mapped == sorted(mapped) and all(0 <= j < max(m, 1) for j in mapped)
    if n == m:
        assert mapped == list(range(n))
    if n >= m > 0:
        assert set(mapped) == set(range(m))  # a deeper model uses every reference layer


def test_clone_of_the_demo_q4_k_m_header_gives_the_preset(tmp_path: Path) -> None:
    model = open_model(DEMO_MODEL)
    q4 = build_plan(model, QuantOptions(preset="Q4_K_M"))
    ref = open_reference(str(write_plan_header(tmp_path / "demo-Q4_K_M.gguf", model, q4)))
    start = build_plan(model, QuantOptions(preset="Q8_0"))
    cloned = apply_clone(start, clone_mix(start, ref))
    assert cloned.types() == q4.types()
    kinds = {tp.why.kind for tp in cloned.tensors if tp.quantizable}
    assert kinds == {ReasonKind.CLONED}
    assert all(tp.reason == "cloned from demo-Q4_K_M.gguf" for tp in cloned.tensors if tp.quantizable)
    assert compare(model, cloned, ref).differing == ()


def test_comparison_rows_totals_and_summary(tmp_path: Path) -> None:
    model = open_model(DEMO_MODEL)
    q4 = build_plan(model, QuantOptions(preset="Q4_K_M"))
    ref = open_reference(str(write_plan_header(tmp_path / "ref.gguf", model, q4)))
    plan = build_plan(model, QuantOptions(preset="Q8_0"))
    size = project_size(model, plan)
    result = compare(model, plan, ref)
    changed = {n for n, t in plan.types().items() if q4.types()[n] != t}
    assert {r.name for r in result.differing} == changed and changed
    for r in result.rows:
        assert r.ref_type == q4.tensor(r.name).type and r.ref_bytes == q4.tensor(r.name).n_bytes
        assert r.plan_bytes == size.by_tensor[r.name]
        assert r.plan_bpw == pytest.approx(8 * r.plan_bytes / r.n_elements)
    assert result.plan_file_bytes == size.file_bytes and result.ref_file_bytes == ref.path.stat().st_size
    for total in result.by_category:
        assert total.plan_bytes == size.by_category[total.key]
        assert total.ref_bytes == sum(t.n_bytes for t in ref.tensors if t.category == total.key)
        assert total.differing == sum(1 for n in changed if plan.tensor(n).source.category == total.key)
    assert sum(t.plan_bytes for t in result.by_layer) == size.tensor_bytes
    assert result.total.ref_bytes == sum(t.n_bytes for t in ref.tensors)
    line = result.summary()
    assert line.startswith(f"differs from ref.gguf in {len(changed)} tensors: ")
    groups = Counter((plan.tensor(n).source.category, plan.tensor(n).type, q4.tensor(n).type) for n in changed)
    (category, ours, theirs), count = groups.most_common(1)[0]
    assert f"{count} {category} {ours}→{theirs}" in line and "\n" not in line
    same = compare(model, q4, ref)
    assert same.summary() == f"same types as ref.gguf in all {len(q4.tensors)} matched tensors"


def test_clone_across_depth_follows_relative_depth() -> None:
    small, deep = header_model(n_layer=3, **SHAPE), header_model(n_layer=8, **SHAPE)
    ladder = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0", "Q4_0", "Q5_1"]  # one type per reference layer
    deep_plan = build_plan(deep, QuantOptions(preset="Q4_K_M"))
    ref_types = _with_types(deep, deep_plan, {f"blk.{j}.ffn_down.weight": t for j, t in enumerate(ladder)}).types()
    ref = _as_reference(deep, ref_types)
    plan = build_plan(small, QuantOptions(preset="Q4_K_M"))
    cloned = apply_clone(plan, clone_mix(plan, ref))
    for i in range(3):
        j = floor(Fraction(i * 7, 2) + Fraction(1, 2))
        assert cloned.tensor(f"blk.{i}.ffn_down.weight").type == ladder[j]
        assert cloned.tensor(f"blk.{i}.attn_v.weight").type == ref_types[f"blk.{j}.attn_v.weight"]
    assert [depth_map(i, 3, 8) for i in range(3)] == [0, 4, 7]
    pairs = counterparts(plan, ref)
    assert pairs.plan_only == () and not any(n.startswith(("blk.1.", "blk.2.")) for n in pairs.ref_only)


def _as_reference(model, types: dict[str, str], path: str = "ref.gguf"):
    """An in-memory reference: ``model``'s tensors carrying ``types`` (header facts only)."""
    tensors = [
        replace(t, src_type=types[t.name], n_bytes=qtype(types[t.name]).tensor_bytes(t.shape)) for t in model.tensors
    ]
    return replace(model, path=Path(path), tensors=tensors)


def test_clone_applies_the_shape_fallback_as_the_plan_does() -> None:
    odd = header_model(n_layer=2, **dict(SHAPE, n_ff=544))  # ffn_down rows of 544: no K-quant fits
    ref_model = header_model(n_layer=2, **SHAPE)
    base = build_plan(ref_model, QuantOptions(preset="Q4_K_M"))
    ref = _as_reference(ref_model, _with_types(ref_model, base, {"blk.0.ffn_down.weight": "Q4_K"}).types())
    plan = build_plan(odd, QuantOptions(preset="Q8_0"))
    cloned = apply_clone(plan, clone_mix(plan, ref))
    by_rule = build_plan(odd, QuantOptions(preset="Q8_0", tensor_types=((r"blk\.0\.ffn_down", "Q4_K"),)))
    tp = cloned.tensor("blk.0.ffn_down.weight")
    assert tp.type == by_rule.tensor("blk.0.ffn_down.weight").type != "Q4_K"
    assert tp.why.kind is ReasonKind.SHAPE_FALLBACK and tp.why.fallback_from == "Q4_K"
    assert "cloned from ref.gguf" in tp.reason
    assert cloned.tensor("blk.0.ffn_up.weight").why.kind is ReasonKind.CLONED


def test_missing_tensors_are_listed_on_both_sides() -> None:
    untied, tied = header_model(n_layer=2, **SHAPE), header_model(n_layer=2, **dict(SHAPE, tied=True))
    tied_plan = build_plan(tied, QuantOptions(preset="Q4_K_M"))
    extra = TensorInfo("blk.1.ffn_extra.weight", (256, 256), "Q8_0", 256 * 272, 0, 1, "other")
    ref = _as_reference(tied, tied_plan.types())
    ref = replace(ref, tensors=[*ref.tensors, extra])
    plan = build_plan(untied, QuantOptions(preset="Q4_K_M"))
    result = compare(untied, plan, ref)
    assert result.plan_only == ("output.weight",) and result.ref_only == ("blk.1.ffn_extra.weight",)
    assert "1 only in the plan, 1 only in the reference" in result.summary()
    clone = clone_mix(plan, ref)
    assert "output.weight" not in clone.types and clone.kept[0].startswith("output.weight (no counterpart")
    assert apply_clone(plan, clone).tensor("output.weight").type == plan.tensor("output.weight").type


def test_category_stands_in_for_a_missing_kind() -> None:
    model = header_model(n_layer=2, **SHAPE)
    base = build_plan(model, QuantOptions(preset="Q4_K_M"))
    ref = _as_reference(model, _with_types(model, base, {"blk.1.ffn_down.weight": "Q8_0"}).types())
    renamed = [replace(t, name=t.name.replace("ffn_down", "ffn_down_shexp")) for t in ref.tensors]
    ref = replace(ref, tensors=[replace(t, category=tensor_category(t.name)) for t in renamed])
    pairs = counterparts(base, ref)
    assert pairs.matched["blk.1.ffn_down.weight"].name == "blk.1.ffn_down_shexp.weight"
    assert "blk.1.ffn_down.weight" in pairs.by_category
    assert apply_clone(base, clone_mix(base, ref)).tensor("blk.1.ffn_down.weight").type == "Q8_0"


def test_bad_reference_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        open_reference(str(bad))
    with pytest.raises(ModelError, match="no such file"):
        open_reference(str(tmp_path / "missing.gguf"))
