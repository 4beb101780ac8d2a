"""The auto-mix behind the Target panel: cost tables computed off the GUI thread, then fast solves.

Costs come from the measured sensitivity table (:mod:`quant_core.sensitivity`, needs llama.cpp;
cached on disk, so only the first computation takes long) or, without the runtime, from the
interim weight-error table. Both are computed by a cancellable :class:`GeneratorWorker` on the
session's kernel runner. Once costs exist a :class:`~quant_core.automix.MixSpace` answers any
budget in milliseconds on the GUI thread; it is rebuilt only when what it depends on changes
(options, importance matrix, the tensors the user pinned).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from quant_core.automix import Budget, CostTable, MixResult, MixSpace
from quant_core.automix.candidates import AutoMixError, pinned_names
from quant_core.errors import QuantError
from quant_core.model import MetaField, Model
from quant_core.plan import Plan

from .session import ExplorerSession, PlanState
from .workers import GeneratorWorker

MIB = 1024**2
CURVE_POINTS = 40


@dataclass(frozen=True)
class Costs:
    """A cost table and how to read it: predicted mean KLD = ``offset`` + Σ costs."""

    table: CostTable
    offset: float = 0.0
    kind: str = "ΔKLD"  # "ΔKLD" (measured sensitivity) or "weight error" (interim stand-in)

    @property
    def is_kld(self) -> bool:
        return self.kind == "ΔKLD"


Progress = tuple[float, str]  # fraction done, what is being done
CostSource = Callable[[Model, Plan, Any, list[MetaField]], Iterator["Progress | Costs"]]


def sensitivity_costs(model: Model, plan: Plan, imatrix: Any, keys: list[MetaField]) -> Iterator[Progress | Costs]:
    """The measured sensitivity table (cached on disk by quant_core.sensitivity)."""
    from quant_core.sensitivity import SensitivityProgress, SensitivityTable, iter_sensitivity

    for item in iter_sensitivity(model, plan, imatrix=imatrix, imatrix_keys=keys):
        if isinstance(item, SensitivityTable):
            yield Costs(item.costs, item.floor, "ΔKLD")
        elif isinstance(item, SensitivityProgress):
            stage = "weight errors" if item.stage == "errors" else "KLD runs"
            yield item.fraction, f"sensitivity, {stage}: {item.detail}"


def interim_costs(model: Model, plan: Plan, imatrix: Any, keys: list[MetaField]) -> Iterator[Progress | Costs]:
    """The interim weight-error table (no runtime needed; a stand-in, not a ΔKLD prediction)."""
    from quant_core.automix.interim import iter_weight_error_costs

    last: dict[str, dict[str, float]] = {}
    for done, total, partial in iter_weight_error_costs(model, plan, imatrix):
        last = partial
        yield done / total, f"weight error of tensor {done} of {total}"
    yield Costs(last, 0.0, "weight error")


def default_costs(model: Model, plan: Plan, imatrix: Any, keys: list[MetaField]) -> Iterator[Progress | Costs]:
    """Measured sensitivity when llama.cpp is installed, else the interim table."""
    from quant_core.quality import runtime_available

    source = sensitivity_costs if runtime_available() else interim_costs
    return source(model, plan, imatrix, keys)


@dataclass(frozen=True)
class Curve:
    """Predicted mean KLD (y) against file size in MiB (x) for a sweep of file budgets."""

    mib: np.ndarray
    kld: np.ndarray
    label: str


class AutoMixer(QObject):
    """Costs (computed once per model, plan inputs and importance matrix) and the solves on them.

    Signals: ``progress(fraction, text)``, ``running_changed(bool)``, ``failed(message)``,
    ``costs_ready()`` when a cost table arrives.
    """

    progress = Signal(float, str)
    running_changed = Signal(bool)
    failed = Signal(str)
    costs_ready = Signal()

    def __init__(
        self, session: ExplorerSession, cost_source: CostSource | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.cost_source = cost_source or default_costs
        self.costs: Costs | None = None
        self._costs_key: tuple | None = None
        self._space: MixSpace | None = None
        self._space_key: tuple | None = None
        self.space_version = 0  # counts rebuilt mix spaces: the curve is redrawn when it changes
        self.worker: GeneratorWorker | None = None
        session.model_changed.connect(self._forget)
        session.imatrix_changed.connect(self._forget)

    # ----- costs ----------------------------------------------------------------------------------
    def _cost_key(self) -> tuple:
        """What the cost table depends on: the model, the preset, the importance matrix."""
        s = self.session
        return (id(s.model), s.state.options.preset, id(s.imatrix))

    @property
    def has_costs(self) -> bool:
        return self.costs is not None and self._costs_key == self._cost_key()

    @property
    def running(self) -> bool:
        return self.worker is not None

    def compute(self) -> bool:
        """Start computing the cost table in the background (False: nothing to do or running)."""
        s = self.session
        if s.model is None or s.plan is None or self.running or self.has_costs:
            return False
        model, plan, imatrix, keys, source = s.model, s.plan, s.imatrix, list(s.imatrix_keys), self.cost_source
        key = self._cost_key()
        self.worker = worker = GeneratorWorker(lambda: source(model, plan, imatrix, keys))
        worker.signals.yielded.connect(lambda item, k=key: self._on_item(item, k))
        worker.signals.errored.connect(self.failed)
        worker.signals.finished.connect(lambda w=worker: self._on_finished(w))
        s.runner.start(worker)
        self.running_changed.emit(True)
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_item(self, item: object, key: tuple) -> None:
        if isinstance(item, Costs):
            if key == self._cost_key():
                self.costs, self._costs_key, self._space = item, key, None
                self.costs_ready.emit()
        elif isinstance(item, tuple):
            self.progress.emit(*item)

    def _on_finished(self, worker: GeneratorWorker) -> None:
        if self.worker is worker:
            self.worker = None
            self.running_changed.emit(False)

    def _forget(self) -> None:
        self.cancel()
        self.costs, self._costs_key, self._space = None, None, None

    def shutdown(self) -> None:
        self.cancel()

    # ----- solving ----------------------------------------------------------------------------------
    def space(self) -> MixSpace:
        """The mix space of the current plan (AutoMixError without costs or free tensors)."""
        s = self.session
        if not self.has_costs or s.model is None or s.plan is None:
            raise AutoMixError("no cost table yet: press Propose to compute it")
        pinned = pinned_names(s.plan)
        key = (self._costs_key, s.state.options, tuple(sorted((n, s.plan.tensor(n).type) for n in pinned)))
        if self._space is None or self._space_key != key:
            assert self.costs is not None
            self._space = MixSpace(s.model, s.plan, self.costs.table, imatrix=s.imatrix, imatrix_keys=s.imatrix_keys)
            self._space_key = key
            self.space_version += 1
        return self._space

    def predicted(self, result: MixResult) -> float:
        """Predicted mean KLD of a solved mix: the table's offset plus Σ costs."""
        assert self.costs is not None
        return self.costs.offset + result.predicted_kld

    def solve(self, budget: Budget) -> MixResult:
        """The best mix for ``budget`` (BudgetError when it cannot be met)."""
        return self.space().solve(budget)

    def apply(self, result: MixResult, text: str, merge_key: object = None) -> bool:
        """Make the solved mix the session's plan as one undoable step."""
        s = self.session
        chosen = tuple(sorted(tp.name for tp in result.plan.tensors if tp.why.kind.value == "auto_mix"))
        state = PlanState(s.state.options, tuple(sorted(result.plan.explicit.items())), chosen)
        if state == s.state:
            return True
        return s.set_state(state, text, merge_key)

    def file_range(self) -> tuple[int, int]:
        """Smallest and largest file bytes the optimised tensors can give."""
        space = self.space()
        return space.smallest_file_bytes(), space.fixed_padded + sum(max(it.padded) for it in space.items)

    def bpw_range(self) -> tuple[float, float]:
        """Smallest and largest bits per weight the optimised tensors can give."""
        space = self.space()
        lo = space.fixed_raw + sum(min(it.raw) for it in space.items)
        hi = space.fixed_raw + sum(max(it.raw) for it in space.items)
        return lo * 8 / space.n_elements, hi * 8 / space.n_elements

    def curve(self, points: int = CURVE_POINTS) -> Curve:
        """Predicted mean KLD for file budgets swept from the smallest to the largest achievable size."""
        lo, hi = self.file_range()
        xs, ys = [], []
        for budget in np.unique(np.linspace(lo, hi, points).astype(np.int64)):
            try:
                r = self.solve(Budget(file_bytes=int(budget)))
            except QuantError:
                continue
            xs.append(r.file_bytes / MIB)
            ys.append(self.predicted(r))
        assert self.costs is not None
        label = "auto-mix, predicted" if self.costs.is_kld else "auto-mix, weight error (not KLD)"
        return Curve(np.array(xs), np.array(ys), label)


def format_kld(value: float) -> str:
    """A KLD for a label: 4 significant digits."""
    return "0" if value == 0 or not math.isfinite(value) else f"{value:.4g}"
