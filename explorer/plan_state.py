"""What the user decides about a plan, and the undo step that changes it.

:class:`PlanState` is the input of a plan (llama-quantize options plus explicit per-tensor
types); :class:`ResolvedState` is everything a state implies, worked out before it is applied;
:class:`PlanCommand` is one undoable change from one state to another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from PySide6.QtGui import QUndoCommand

from quant_core.imatrix import Imatrix, has_importance
from quant_core.model import MetaField, Model
from quant_core.plan import Plan, QuantOptions, type_problem
from quant_core.qtypes import is_float_type
from quant_core.reasons import Reason
from quant_core.size import SizeReport

ImatrixKey = tuple[str, tuple[str, ...], tuple[str, ...]]  # path, include, exclude filters


@dataclass(frozen=True)
class PlanState:
    """What the user decides: llama-quantize options plus explicit per-tensor types.

    ``auto_mixed`` names the explicit types an auto-mix chose (reason kind AUTO_MIX, not pinned);
    ``why`` gives other explicit types their own reason (a mix cloned from a reference file).
    """

    options: QuantOptions
    explicit: tuple[tuple[str, str], ...] = ()
    auto_mixed: tuple[str, ...] = ()
    why: tuple[tuple[str, Reason], ...] = ()

    @property
    def explicit_map(self) -> dict[str, str]:
        return dict(self.explicit)

    def with_types(
        self, plan: Plan, names: Iterable[str], type_name: str, imatrix: Imatrix | None
    ) -> tuple[PlanState, list[str], list[str]]:
        """This state with ``type_name`` chosen by hand for the named tensors that can take it.

        Returns the new state, the names given the type, and "name (why not)" for the others.
        A tensor chosen by hand is no longer auto-mixed (it is pinned).
        """
        explicit = self.explicit_map
        applied: list[str] = []
        skipped: list[str] = []
        for name in names:
            tp = plan.tensor(name)
            problem = type_problem(tp, type_name, has_importance(imatrix, tp.source))
            if problem is None:
                explicit[name] = type_name
                applied.append(name)
            else:
                skipped.append(f"{name} ({problem})")
        auto = tuple(n for n in self.auto_mixed if n not in set(applied))
        why = tuple((n, r) for n, r in self.why if n not in set(applied))
        return replace(self, explicit=tuple(sorted(explicit.items())), auto_mixed=auto, why=why), applied, skipped

    def without_types(self, names: Iterable[str]) -> PlanState:
        """This state with the named tensors back to what the preset and rules decide."""
        drop = set(names)
        why = tuple((n, r) for n, r in self.why if n not in drop)
        return replace(self, explicit=tuple((n, t) for n, t in self.explicit if n not in drop), why=why)


def initial_state(model: Model) -> PlanState:
    """A new model's state: the default preset, requantizing allowed when the source is quantized."""
    quantized = any(len(t.shape) >= 2 and not is_float_type(t.src_type) for t in model.tensors)
    return PlanState(QuantOptions(allow_requantize=quantized))


@dataclass(frozen=True)
class ResolvedState:
    """A plan state worked out before it is applied: its importance matrix, plan and size."""

    state: PlanState
    imatrix: Imatrix | None
    imatrix_keys: list[MetaField]
    plan: Plan
    size: SizeReport


def imatrix_key(options: QuantOptions) -> ImatrixKey | None:
    """The importance matrix the options name, with its filters (None without one)."""
    return (options.imatrix, options.include_weights, options.exclude_weights) if options.imatrix else None


class PlanCommand(QUndoCommand):
    """One undoable plan change: ``apply`` makes ``after`` current on redo and ``before`` on undo."""

    def __init__(
        self,
        apply: Callable[[PlanState], None],
        before: PlanState,
        after: PlanState,
        text: str,
        merge_key: object = None,
    ) -> None:
        super().__init__(text)
        self.apply, self.before, self.after = apply, before, after
        self.merge_key = merge_key

    def id(self) -> int:
        return -1 if self.merge_key is None else 1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt's name)
        """Steps with the same merge key (one slider drag) become one undo step."""
        if not isinstance(other, PlanCommand) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        self.setText(other.text())
        return True

    def redo(self) -> None:
        self.apply(self.after)

    def undo(self) -> None:
        self.apply(self.before)
