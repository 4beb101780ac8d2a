"""Auto-mix on real GGUF files: budgets met to the byte, pins, candidates, optimum, reproducibility."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import pytest

from quant_core.automix import AutoMixError, Budget, BudgetError, MixSpace, kv_cache_bytes, predicted_kld
from quant_core.automix.budget import max_bytes_for_bpw
from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan, parse_tensor_type
from quant_core.qtypes import qtype
from quant_core.reasons import ReasonKind
from quant_core.recipe import Recipe, llama_quantize_args
from quant_core.size import project_size

TYPES = ("Q2_K", "Q3_K", "Q4_0", "Q4_K", "IQ4_XS", "Q5_K", "Q6_K", "Q8_0", "F16")


def _table(plan, types=TYPES, seed: int = 0) -> dict[str, dict[str, float]]:
    """A constructed cost table: per-tensor sensitivity x error falling with bits per weight."""
    rng = random.Random(seed)
    table = {}
    for tp in plan.tensors:
        if tp.quantizable:
            s = rng.uniform(0.2, 5.0)
            table[tp.name] = {t: s * 2 ** (-1.7 * qtype(t).bpw) * rng.uniform(0.9, 1.1) for t in types}
    return table


@pytest.fixture(scope="module")
def model(small_gguf: Path):
    return open_model(small_gguf)


@pytest.fixture(scope="module")
def q4km(model):
    return build_plan(model, QuantOptions(preset="Q4_K_M"))


def test_file_budget_met_to_the_byte(model, q4km) -> None:
    space = MixSpace(model, q4km, _table(q4km))
    smallest = space.smallest_file_bytes()
    largest = project_size(model, build_plan(model, QuantOptions(preset="F16"))).file_bytes
    previous = math.inf
    for budget in range(smallest, largest + 1, (largest - smallest) // 23):
        r = space.solve(Budget(file_bytes=budget))
        size = project_size(model, r.plan)
        assert size.file_bytes == r.file_bytes <= budget
        assert r.exact
        assert r.predicted_kld <= previous * (1 + 1e-12)  # monotone
        previous = r.predicted_kld
        assert r.predicted_kld == pytest.approx(predicted_kld(r.plan, _table(q4km)), rel=1e-12)


def test_budget_at_a_preset_size_is_used_well(model, q4km) -> None:
    """At exactly Q4_K_M's size the mix is no larger and predicts no worse than Q4_K_M itself."""
    table = _table(q4km)
    budget = project_size(model, q4km).file_bytes
    r = MixSpace(model, q4km, table).solve(Budget(file_bytes=budget))
    assert r.file_bytes <= budget
    assert r.predicted_kld <= predicted_kld(q4km, table)


def test_export_writes_the_projected_size(model, q4km, tmp_path: Path) -> None:
    table = _table(q4km, ("Q4_0", "Q5_0", "Q8_0", "F16"))
    budget = project_size(model, q4km).file_bytes + 4321
    r = MixSpace(model, q4km, table).solve(Budget(file_bytes=budget))
    out = tmp_path / "mix.gguf"
    for _ in iter_export(model, r.plan, out):
        pass
    assert out.stat().st_size == r.file_bytes <= budget
    written = open_model(out)
    assert {t.name: t.src_type for t in written.tensors} == r.plan.types()


def test_known_optimum_through_the_real_layout(model) -> None:
    """Four free tensors, three types: brute force over real plans and their projected sizes."""
    base = build_plan(model, QuantOptions(preset="Q4_K_M"))
    free = ["blk.0.attn_v.weight", "blk.1.ffn_down.weight", "blk.2.attn_q.weight", "output.weight"]
    explicit = {tp.name: tp.type for tp in base.tensors if tp.quantizable and tp.name not in free}
    base = build_plan(model, QuantOptions(preset="Q4_K_M"), explicit)
    types = ("Q3_K", "Q5_K", "Q8_0")
    rng = random.Random(5)
    table = {n: {t: rng.uniform(0, 1) * 2 ** (-qtype(t).bpw) for t in types} for n in free}
    space = MixSpace(model, base, table)
    sizes, costs = {}, {}
    for combo in itertools.product(types, repeat=len(free)):
        plan = build_plan(model, QuantOptions(preset="Q4_K_M"), {**explicit, **dict(zip(free, combo))})
        sizes[combo] = project_size(model, plan).file_bytes
        costs[combo] = math.fsum(table[n][t] for n, t in zip(free, combo))
    for budget in sorted(set(sizes.values())):
        best = min(c for combo, c in costs.items() if sizes[combo] <= budget)
        r = space.solve(Budget(file_bytes=budget))
        assert r.predicted_kld == pytest.approx(best, rel=1e-12)
        assert r.file_bytes <= budget


def test_pins_and_never_quantized_tensors_are_kept(model) -> None:
    options = QuantOptions(preset="Q4_K_M", tensor_types=(("attn_q", "Q8_0"),), output_tensor_type="Q6_K")
    base = build_plan(model, options, {"blk.1.ffn_up.weight": "Q2_K"})
    r = MixSpace(model, base, _table(base)).solve(Budget(file_bytes=project_size(model, base).file_bytes))
    for tp, before in zip(r.plan.tensors, base.tensors):
        if "attn_q" in tp.name:
            assert (tp.type, tp.why.kind) == ("Q8_0", ReasonKind.USER_RULE)
        elif tp.name == "output.weight":
            assert (tp.type, tp.why.kind) == ("Q6_K", ReasonKind.OUTPUT_TENSOR_TYPE)
        elif tp.name == "blk.1.ffn_up.weight":
            assert (tp.type, tp.why.kind) == ("Q2_K", ReasonKind.EXPLICIT)
        elif not tp.quantizable:
            assert (tp.type, tp.why) == (before.type, before.why)
        else:
            assert tp.why.kind == ReasonKind.AUTO_MIX


def test_tensors_outside_the_table_keep_the_preset(model, q4km) -> None:
    table = {n: c for n, c in _table(q4km).items() if "ffn" in n}
    r = MixSpace(model, q4km, table).solve(Budget(bpw=4.0))
    for tp, before in zip(r.plan.tensors, q4km.tensors):
        if tp.name in table:
            assert tp.why.kind == ReasonKind.AUTO_MIX
        else:
            assert (tp.type, tp.why) == (before.type, before.why)


def test_no_shape_fallbacks_and_no_imatrix_types_without_one(tied_odd_gguf: Path) -> None:
    m = open_model(tied_odd_gguf)
    base = build_plan(m, QuantOptions(preset="Q4_K_M"))
    table = _table(base, TYPES + ("IQ2_XS", "IQ1_S"))
    space = MixSpace(m, base, table)
    ffn_down = next(it for it in space.items if "ffn_down" in it.names[0])
    assert "Q4_K" not in ffn_down.types and "Q4_0" in ffn_down.types  # 288 columns: 32-blocks only
    assert all("IQ2_XS" not in it.types and "IQ1_S" not in it.types for it in space.items)
    for budget in (space.smallest_file_bytes(), space.smallest_file_bytes() * 2):
        for tp in space.solve(Budget(file_bytes=budget)).plan.tensors:
            assert tp.why.kind != ReasonKind.SHAPE_FALLBACK
            assert tp.source.n_per_row % qtype(tp.type).block_size == 0


def test_groups_share_one_type(model, q4km) -> None:
    groups = [[f"blk.{i}.attn_k.weight", f"blk.{i}.attn_v.weight"] for i in range(3)]
    groups += [[f"blk.{i}.ffn_gate.weight", f"blk.{i}.ffn_up.weight"] for i in range(3)]
    space = MixSpace(model, q4km, _table(q4km), groups)
    for f in (0.2, 0.5, 0.8):
        budget = int(space.smallest_file_bytes() * (1 + f))
        plan = space.solve(Budget(file_bytes=budget)).plan
        for g in groups:
            assert len({plan.tensor(n).type for n in g}) == 1
    with pytest.raises(AutoMixError):
        MixSpace(model, q4km, _table(q4km), [["blk.0.attn_k.weight", "nope"]])


def test_bpw_budget(model, q4km) -> None:
    space = MixSpace(model, q4km, _table(q4km))
    previous = math.inf
    for target in (3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 8.0):
        r = space.solve(Budget(bpw=target))
        assert project_size(model, r.plan).bpw == r.bpw <= target
        assert r.predicted_kld <= previous
        previous = r.predicted_kld
    n = 12345
    limit = max_bytes_for_bpw(4.5, n)
    assert limit * 8.0 / n <= 4.5 < (limit + 1) * 8.0 / n


def test_memory_budget_counts_the_kv_cache(model, q4km) -> None:
    space = MixSpace(model, q4km, _table(q4km))
    kv = kv_cache_bytes(model, 1000).total
    memory = space.smallest_file_bytes() + kv + 300_000
    r = space.solve(Budget(memory_bytes=memory, n_ctx=1000, reserve_bytes=100_000))
    assert r.kv_bytes == kv
    assert r.file_bytes + kv + 100_000 <= memory
    q8 = space.solve(
        Budget(memory_bytes=memory, n_ctx=1000, reserve_bytes=100_000, cache_type_k="Q8_0", cache_type_v="Q8_0")
    )
    assert q8.kv_bytes < kv and q8.predicted_kld <= r.predicted_kld


def test_budgets_below_the_smallest_mix_say_so(model, q4km) -> None:
    space = MixSpace(model, q4km, _table(q4km))
    with pytest.raises(BudgetError, match="below the smallest achievable file"):
        space.solve(Budget(file_bytes=space.smallest_file_bytes() - 1))
    with pytest.raises(BudgetError, match="bpw"):
        space.solve(Budget(bpw=0.5))
    with pytest.raises(BudgetError, match="KV cache"):
        space.solve(Budget(memory_bytes=space.smallest_file_bytes(), n_ctx=4096))
    with pytest.raises(BudgetError, match="--ctx"):
        Budget(memory_bytes=10**9)


def test_a_recipe_reproduces_the_mix(model, q4km, tmp_path: Path) -> None:
    r = MixSpace(model, q4km, _table(q4km)).solve(Budget(bpw=4.2))
    path = tmp_path / "mix.json"
    Recipe(options=r.plan.options, explicit=dict(r.plan.explicit)).save(path)
    loaded = Recipe.load(path)
    again = build_plan(model, loaded.options, loaded.explicit)
    assert again.types() == r.plan.types()
    assert project_size(model, again).file_bytes == r.file_bytes


def test_the_llama_quantize_command_reproduces_the_mix(model, q4km) -> None:
    r = MixSpace(model, q4km, _table(q4km)).solve(Budget(bpw=4.2))
    args = llama_quantize_args(model, r.plan, "in.gguf", "out.gguf")
    rules = tuple(parse_tensor_type(args[i + 1]) for i, a in enumerate(args) if a == "--tensor-type")
    upstream = build_plan(model, QuantOptions(preset=args[-1], tensor_types=rules))
    assert upstream.types() == r.plan.types()
