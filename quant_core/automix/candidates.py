"""Which tensors the auto-mix may change, and which types each may take.

A tensor is optimised when it is quantizable, is in the cost table, and the user did not pin it
(an explicit type, a ``--tensor-type`` rule, ``--output-tensor-type`` or
``--token-embedding-type``). Its candidates are the cost table's types that apply without a shape
fallback (the row length is a multiple of the block), that our exporter can write, and that need
an importance matrix only when one with an entry for the tensor is loaded. Tensors that must share
a type (``groups``) form one item whose candidates are the types valid for all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import QuantError
from ..imatrix import tensor_importance
from ..kernels import QUANTIZERS
from ..layout import pad
from ..plan import Plan, TensorPlan, type_problem
from ..qtypes import QTYPES, qtype
from ..reasons import ReasonKind

CostTable = Mapping[str, Mapping[str, float]]
"""tensor name -> {type name (upper-case ggml) -> predicted ΔKLD (>= 0, additive over tensors)}."""

_PINNING_KINDS = (ReasonKind.USER_RULE, ReasonKind.OUTPUT_TENSOR_TYPE, ReasonKind.TOKEN_EMBEDDING_TYPE)


class AutoMixError(QuantError):
    """A cost table, group or budget the auto-mix cannot use."""


@dataclass(frozen=True)
class Item:
    """Tensors that take one type together, with the candidate types and their totals.

    ``padded`` counts file bytes (each tensor's data padded to the alignment), ``raw`` counts
    tensor bytes as llama-quantize's bits per weight does.
    """

    names: tuple[str, ...]
    types: tuple[str, ...]
    costs: tuple[float, ...]
    padded: tuple[int, ...]
    raw: tuple[int, ...]


def tensor_bytes(tp: TensorPlan, type_name: str) -> int:
    """Bytes of the tensor's data at ``type_name`` (the source bytes when nothing converts)."""
    if type_name == tp.source.src_type:
        return tp.source.n_bytes
    return qtype(type_name).tensor_bytes(tp.source.shape)


def pinned_names(plan: Plan) -> set[str]:
    """Tensors whose type the user fixed: explicit types (not an earlier auto-mix's) and
    llama-quantize's type options."""
    patterns = [re.compile(p) for p, _ in plan.options.tensor_types]
    out = set()
    for tp in plan.tensors:
        by_hand = tp.name in plan.explicit and tp.why.kind != ReasonKind.AUTO_MIX
        if by_hand or tp.preset_why.kind in _PINNING_KINDS or any(p.search(tp.name) for p in patterns):
            out.add(tp.name)
    return out


def candidate_types(
    tp: TensorPlan, wanted: Sequence[str], imatrix: Any | None, allow_requantize: bool, preset: str = ""
) -> list[str]:
    """The types of ``wanted`` this tensor can take without a fallback (see the module doc)."""
    out = []
    has_importance = None
    for name in wanted:
        if name not in QTYPES or type_problem(tp, name) is not None:
            continue
        converts = name != tp.source.src_type
        if converts and (name not in QUANTIZERS or not (_is_float(tp.source.src_type) or allow_requantize)):
            continue
        if converts and _needs_imatrix(name, tp, preset):
            if has_importance is None:
                has_importance = imatrix is not None and tensor_importance(imatrix, tp.source) is not None
            if not has_importance:
                continue
        out.append(name)
    return out


def build_items(
    plan: Plan, costs: CostTable, groups: Sequence[Sequence[str]] = (), imatrix: Any | None = None
) -> list[Item]:
    """The optimisation items of ``plan`` under the cost table (pinned tensors left out)."""
    pinned = pinned_names(plan)
    by_name = {tp.name: tp for tp in plan.tensors}
    free = [tp.name for tp in plan.tensors if tp.quantizable and tp.name in costs and tp.name not in pinned]
    free_set = set(free)
    group_of: dict[str, tuple[str, ...]] = {}
    for g in groups:
        members = tuple(n for n in g if n in free_set)
        unknown = [n for n in g if n not in by_name]
        if unknown:
            raise AutoMixError(f"group names unknown tensor {unknown[0]!r}")
        for n in members:
            if n in group_of:
                raise AutoMixError(f"tensor {n!r} is in two groups")
            group_of[n] = members
    items, seen = [], set()
    for name in free:
        members = group_of.get(name, (name,))
        if members in seen:
            continue
        seen.add(members)
        tps = [by_name[n] for n in members]
        items.append(_item(tps, costs, imatrix, plan.options.allow_requantize, plan.file_type.name))
    return items


def _item(tps: list[TensorPlan], costs: CostTable, imatrix: Any | None, allow_requantize: bool, preset: str) -> Item:
    common: list[str] | None = None
    for tp in tps:
        table = costs[tp.name]
        _check_costs(tp.name, table)
        ok = candidate_types(tp, [qtype(t).name for t in table], imatrix, allow_requantize, preset)
        common = ok if common is None else [t for t in common if t in ok]
    types = tuple(common or ())
    if not types:
        raise AutoMixError(f"{tps[0].name}: no type of the cost table applies (shape, imatrix or requantize)")
    upper = [{qtype(k).name: v for k, v in costs[tp.name].items()} for tp in tps]
    return Item(
        names=tuple(tp.name for tp in tps),
        types=types,
        costs=tuple(math.fsum(u[t] for u in upper) for t in types),
        padded=tuple(sum(pad(tensor_bytes(tp, t)) for tp in tps) for t in types),
        raw=tuple(sum(tensor_bytes(tp, t) for tp in tps) for t in types),
    )


def _check_costs(name: str, table: Mapping[str, float]) -> None:
    for t, v in table.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise AutoMixError(f"cost of {name} at {t} must be a finite number >= 0, got {v!r}")


def _needs_imatrix(type_name: str, tp: TensorPlan, preset: str) -> bool:
    qt = qtype(type_name)
    exempt = tp.name in ("token_embd.weight", "per_layer_token_embd.weight", "output.weight")
    llama_needs = qt.llama_requires_imatrix or (qt.name == "Q2_K" and preset == "Q2_K_S")
    return qt.ggml_requires_imatrix or (llama_needs and not exempt)


def _is_float(type_name: str) -> bool:
    qt = QTYPES.get(type_name)
    return qt is not None and qt.is_float
