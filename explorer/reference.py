"""A reference GGUF opened beside the model: its comparison with the plan, and cloning its mix.

The reference's header is read in a light job (a 7B-class header takes a fraction of a second,
a slow disk longer); the comparison is recomputed whenever the plan changes (header facts only,
no tensor data). Cloning builds one new :class:`~explorer.plan_state.PlanState` whose explicit
types carry the clone's reasons, and applies it through the session as one undoable step.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from quant_core.clone import Clone, clone_mix
from quant_core.compare import Comparison, compare, open_reference
from quant_core.errors import QuantError
from quant_core.imatrix import Imatrix, has_importance
from quant_core.model import Model
from quant_core.plan import Plan, type_problem

from .plan_state import PlanState
from .session import ExplorerSession
from .workers import GeneratorWorker


def cloned_state(state: PlanState, plan: Plan, clone: Clone, imatrix: Imatrix | None) -> tuple[PlanState, list[str]]:
    """``state`` with the clone's types as explicit types (reasons kept); "name (why not)" for the
    tensors that keep their type because the loaded importance matrix has no entry they need."""
    explicit = dict(state.explicit)
    why = dict(state.why)
    skipped = []
    for name, type_name in clone.types.items():
        tp = plan.tensor(name)
        problem = type_problem(tp, type_name, has_importance(imatrix, tp.source))
        if problem is not None:
            skipped.append(f"{name} ({problem})")
            continue
        explicit[name] = type_name
        why[name] = clone.why[name]
    auto = tuple(n for n in state.auto_mixed if n not in clone.types)
    new = replace(state, explicit=tuple(sorted(explicit.items())), auto_mixed=auto, why=tuple(sorted(why.items())))
    return new, skipped


class ReferenceTracker(QObject):
    """The reference file of a session and its comparison with the current plan."""

    changed = Signal()  # reference opened or closed, or the comparison recomputed
    loading = Signal(str)  # the file being read ("" when done)
    failed = Signal(str)  # one line: the file cannot be used

    def __init__(self, session: ExplorerSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.reference: Model | None = None
        self.comparison: Comparison | None = None
        self._job: GeneratorWorker | None = None
        self._closed = False
        session.plan_changed.connect(self.refresh)
        session.model_changed.connect(self.refresh)

    def open(self, path: str | Path) -> None:
        """Read the reference's header off the GUI thread, then compare."""
        self.session.light.drop(self._job)
        self.loading.emit(Path(path).name)

        def done(ref: Model) -> None:
            if self._job is worker and not self._closed:
                self._job = None
                self.reference = ref
                self.loading.emit("")
                self.refresh()

        def failed(message: str) -> None:
            if self._job is worker and not self._closed:
                self._job = None
                self.loading.emit("")
                self.failed.emit(message)

        worker = self.session.light.run(open_reference, str(path), on_result=done, on_error=failed)
        self._job = worker

    def close(self) -> None:
        """Forget the reference."""
        self.reference, self.comparison = None, None
        self.changed.emit()

    def refresh(self) -> None:
        """Compare the current plan with the reference again."""
        s = self.session
        if self.reference is None or s.model is None or s.plan is None:
            self.comparison = None
        else:
            self.comparison = compare(s.model, s.plan, self.reference, s.size)
        self.changed.emit()

    def clone(self) -> bool:
        """Give the plan the reference's mix as one undoable step; the status bar names what was kept."""
        s = self.session
        if self.reference is None or s.plan is None:
            return False
        try:
            clone = clone_mix(s.plan, self.reference)
            state, skipped = cloned_state(s.state, s.plan, clone, s.imatrix)
        except QuantError as err:
            s.error.emit(str(err))
            return False
        kept = [*clone.kept, *skipped]
        if state == s.state:
            s.status.emit(f"the plan already has {clone.reference}'s mix")
            return True
        done = s.set_state(state, f"clone mix of {clone.reference}")
        if done:
            note = f"cloned {len(clone.types) - len(skipped)} tensor types from {clone.reference}"
            if clone.fallbacks:
                note += f" ({len(clone.fallbacks)} with a shape fallback)"
            if kept:
                note += f"; {len(kept)} kept their type: " + ", ".join(kept)
            s.status.emit(note)
        return done

    def shutdown(self) -> None:
        """Ignore a read still under way (the window is closing)."""
        self._closed = True
        self.session.light.drop(self._job)
