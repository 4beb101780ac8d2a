"""What the user decides about a plan, and the undo step that changes it.

:class:`PlanState` is the input of a plan (llama-quantize options plus explicit per-tensor
types); :class:`ResolvedState` is everything a state implies, worked out before it is applied;
:class:`PlanCommand` is one undoable change from one state to another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from quant_core.imatrix import Imatrix
from quant_core.model import MetaField
from quant_core.plan import Plan, QuantOptions
from quant_core.size import SizeReport

ImatrixKey = tuple[str, tuple[str, ...], tuple[str, ...]]  # path, include, exclude filters


@dataclass(frozen=True)
class PlanState:
    """What the user decides: llama-quantize options plus explicit per-tensor types.

    ``auto_mixed`` names the explicit types an auto-mix chose (reason kind AUTO_MIX, not pinned).
    """

    options: QuantOptions
    explicit: tuple[tuple[str, str], ...] = ()
    auto_mixed: tuple[str, ...] = ()

    @property
    def explicit_map(self) -> dict[str, str]:
        return dict(self.explicit)


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
