"""Clone a reference GGUF's mix onto the current model: the same type per kind and relative depth.

Every quantizable tensor of the plan takes the type of its counterpart in the reference (see
:func:`quant_core.compare.counterparts`: same name outside the blocks, same kind at the mapped
layer ``round(i * (m - 1) / (n - 1))`` inside them). The types become explicit per-tensor types
whose reason kind is CLONED ("cloned from REF.gguf"); where the model's row length cannot hold
the reference's type, llama-quantize's shape fallback applies exactly as the plan applies it
(reason kind SHAPE_FALLBACK, ``fallback_from`` the reference's type). Tensors without a
counterpart keep what the preset and rules decide. With the same shapes and names, the clone
has exactly the reference's types.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import reasons
from .compare import counterparts
from .errors import QuantError
from .model import Model
from .plan import Plan, shape_fallback, with_explicit
from .qtypes import qtype
from .reasons import Reason, ReasonKind


@dataclass(frozen=True)
class Clone:
    """The explicit types (and their reasons) that give a plan the reference's mix."""

    reference: str
    types: dict[str, str]
    why: dict[str, Reason]
    kept: tuple[str, ...]
    """Quantizable tensors that keep the plan's type, as "name (why)"."""

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """Tensors that took a shape fallback instead of the reference's type."""
        return tuple(n for n, r in self.why.items() if r.kind is ReasonKind.SHAPE_FALLBACK)


def clone_mix(plan: Plan, ref: Model) -> Clone:
    """The reference's types mapped onto ``plan``'s quantizable tensors (shape fallbacks applied)."""
    pairs = counterparts(plan, ref)
    cloned = reasons.cloned(ref.path.name)
    types: dict[str, str] = {}
    why: dict[str, Reason] = {}
    kept: list[str] = []
    for tp in plan.tensors:
        if not tp.quantizable:
            continue
        source = pairs.matched.get(tp.name)
        if source is None:
            kept.append(f"{tp.name} (no counterpart in {ref.path.name})")
            continue
        try:
            wanted = qtype(source.src_type).name
            types[tp.name], why[tp.name] = shape_fallback(tp.source, wanted, cloned)
        except QuantError as err:  # a type the planner cannot write, or no fallback for it
            kept.append(f"{tp.name} ({err})")
    return Clone(ref.path.name, types, why, tuple(kept))


def apply_clone(plan: Plan, clone: Clone) -> Plan:
    """``plan`` with the clone's types on top of its explicit ones (the clone wins where both name a tensor)."""
    return with_explicit(plan, {**plan.explicit, **clone.types}, why=clone.why)
