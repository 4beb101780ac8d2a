"""The auto-mix: the plan whose predicted ΔKLD is least among those that fit a budget.

``MixSpace(model, plan, costs)`` does the budget-independent work once (candidates, sizes, the
solver's hulls), then :meth:`MixSpace.solve` answers a budget in milliseconds, so a slider can
follow it. The answer is an ordinary plan: the optimised tensors carry explicit types with the
reason kind AUTO_MIX, so size, export, recipes and the llama-quantize command reproduce it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..layout import compute_layout, pad
from ..model import MetaField, Model
from ..plan import Plan, with_explicit
from ..size import project_size
from .budget import Budget, BudgetError, Capacity, capacity
from .candidates import AutoMixError, CostTable, Item, build_items
from .solver import Choice, InfeasibleError, Problem, Solution


@dataclass(frozen=True)
class MixResult:
    """A solved budget: the plan, its predicted ΔKLD and size, and the solver's certificate."""

    plan: Plan
    predicted_kld: float
    file_bytes: int
    bpw: float
    kv_bytes: int
    solution: Solution

    @property
    def exact(self) -> bool:
        """True when the solver proved no other choice of the candidates predicts less."""
        return self.solution.exact


class MixSpace:
    """Everything about ``plan`` that does not depend on the budget."""

    def __init__(
        self,
        model: Model,
        plan: Plan,
        costs: CostTable,
        groups: Sequence[Sequence[str]] = (),
        imatrix: Any | None = None,
        imatrix_keys: list[MetaField] | None = None,
    ) -> None:
        self.model, self.base, self.keys = model, plan, imatrix_keys
        self.items: list[Item] = build_items(plan, costs, groups, imatrix)
        if not self.items:
            raise AutoMixError("no tensor to optimise: every quantizable tensor is pinned or has no cost")
        optimised = {n for it in self.items for n in it.names}
        others = [tp for tp in plan.tensors if tp.name not in optimised]
        meta = compute_layout(model, plan, imatrix_keys).meta_bytes
        self.fixed_padded = meta + sum(pad(tp.n_bytes) for tp in others)
        self.fixed_raw = sum(tp.n_bytes for tp in others)
        self.n_elements = sum(tp.source.n_elements for tp in plan.tensors)
        self._problems: dict[bool, Problem] = {}

    def problem(self, padded: bool) -> Problem:
        """The solver's precomputed problem for file bytes (padded) or bpw bytes (raw)."""
        if padded not in self._problems:
            self._problems[padded] = Problem([Choice(it.costs, it.padded if padded else it.raw) for it in self.items])
        return self._problems[padded]

    def smallest_file_bytes(self) -> int:
        """The file size with every optimised tensor at its smallest candidate."""
        return self.fixed_padded + sum(min(it.padded) for it in self.items)

    def solve(self, budget: Budget) -> MixResult:
        """The least predicted ΔKLD within ``budget`` (BudgetError when nothing fits)."""
        cap = capacity(budget, self.model, self.fixed_padded, self.fixed_raw, self.n_elements)
        try:
            solution = self.problem(cap.padded).solve(cap.limit)
        except InfeasibleError:
            raise BudgetError(self._too_small(budget, cap)) from None
        chosen = {n: it.types[k] for it, k in zip(self.items, solution.picks) for n in it.names}
        plan = with_explicit(self.base, {**self.base.explicit, **chosen}, auto_mixed=chosen.keys())
        size = project_size(self.model, plan, self.keys)
        self._check(budget, cap, size.file_bytes, size.tensor_bytes)
        return MixResult(plan, solution.cost, size.file_bytes, size.bpw, cap.kv_bytes, solution)

    def _too_small(self, budget: Budget, cap: Capacity) -> str:
        smallest_file = self.smallest_file_bytes()
        if budget.file_bytes is not None and budget.file_bytes < smallest_file:
            return (
                f"--target-size {budget.file_bytes} bytes is below the smallest achievable file, {smallest_file} bytes"
            )
        if budget.memory_bytes is not None and cap.padded:
            need = smallest_file + cap.kv_bytes + budget.reserve_bytes
            if budget.memory_bytes < need:
                return (
                    f"--target-memory {budget.memory_bytes} bytes is below the smallest achievable "
                    f"{need} bytes (file {smallest_file} + KV cache {cap.kv_bytes} at context "
                    f"{budget.n_ctx} + reserve {budget.reserve_bytes})"
                )
        raw = self.fixed_raw + sum(min(it.raw) for it in self.items)
        return f"--target-bpw {budget.bpw:g} is below the smallest achievable {raw * 8 / self.n_elements:.4f} bpw"

    def _check(self, budget: Budget, cap: Capacity, file_bytes: int, tensor_bytes: int) -> None:
        """The projected size must honour every budget; anything else is a bug, said loudly."""
        ok = True
        if budget.file_bytes is not None:
            ok &= file_bytes <= budget.file_bytes
        if budget.memory_bytes is not None:
            ok &= file_bytes + cap.kv_bytes + budget.reserve_bytes <= budget.memory_bytes
        if budget.bpw is not None:
            ok &= tensor_bytes * 8.0 / self.n_elements <= budget.bpw
        if not ok:
            raise AutoMixError(f"internal error: the mix ({file_bytes} bytes) exceeds the budget {budget.describe()}")


def auto_mix(
    model: Model,
    plan: Plan,
    costs: CostTable,
    budget: Budget,
    groups: Sequence[Sequence[str]] = (),
    imatrix: Any | None = None,
    imatrix_keys: list[MetaField] | None = None,
) -> MixResult:
    """One-shot :class:`MixSpace` ``.solve``: the best plan for ``budget`` under the cost table."""
    return MixSpace(model, plan, costs, groups, imatrix, imatrix_keys).solve(budget)


def predicted_kld(plan: Plan, costs: CostTable) -> float:
    """Σ of the cost table's ΔKLD at each tensor's planned type (tensors or types missing: 0)."""
    total = []
    for tp in plan.tensors:
        table = costs.get(tp.name)
        if table:
            upper = {k.upper(): v for k, v in table.items()}
            total.append(upper.get(tp.type, 0.0))
    return math.fsum(total)
