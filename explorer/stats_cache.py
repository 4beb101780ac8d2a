"""The one cache of statistics the explorer shows, with one invalidation rule.

Every statistic is a pure function of (model, importance matrix, tensor, type, encoder[, compared
type]).
Entries are keyed by the tensor and type(s), so a plan change never invalidates anything: a
tensor whose type changes simply looks up another key. The model and the importance matrix are
not in the key: the session calls :meth:`StatisticsCache.clear` when either changes, and that is
the only way entries go (besides the size bound on inspections, which are large).
Views hold no copies; they ask the session, which asks this cache.
"""

from __future__ import annotations

from collections import OrderedDict

from quant_core.evaluate import TensorEvaluation
from quant_core.inspect import Inspection
from quant_core.plan import TensorPlan

MAX_INSPECTIONS = 32

EvalKey = tuple[str, str, str]  # tensor, type, encoder
InspectKey = tuple[str, str, "str | None", str]  # tensor, planned type, compared type, planned encoder


def eval_key(tp: TensorPlan) -> EvalKey:
    """The key of a planned tensor's evaluation: its name, type and encoder."""
    return (tp.name, tp.type, tp.encoder)


class StatisticsCache:
    """Evaluations and inspections of the current model and importance matrix, and their failures."""

    def __init__(self, max_inspections: int = MAX_INSPECTIONS) -> None:
        self.max_inspections = max_inspections
        self.evaluations: dict[EvalKey, TensorEvaluation] = {}
        self.failures: dict[EvalKey, str] = {}
        self.inspections: OrderedDict[InspectKey, Inspection] = OrderedDict()
        self.inspection_failures: dict[InspectKey, str] = {}
        self.clears = 0

    def clear(self) -> None:
        """Forget everything: the model or the importance matrix changed."""
        self.evaluations.clear()
        self.failures.clear()
        self.inspections.clear()
        self.inspection_failures.clear()
        self.clears += 1

    # ----- whole-tensor evaluations (overview, map, table) -----------------------------------
    def evaluation(self, name: str, type_name: str, encoder: str = "ggml") -> TensorEvaluation | None:
        return self.evaluations.get((name, type_name, encoder))

    def known(self, name: str, type_name: str, encoder: str = "ggml") -> bool:
        """True when the tensor at this type and encoder was measured or failed (not to be tried again)."""
        key = (name, type_name, encoder)
        return key in self.evaluations or key in self.failures

    def add_evaluation(self, ev: TensorEvaluation) -> None:
        self.evaluations[(ev.name, ev.type, ev.encoder)] = ev

    def add_failure(self, name: str, type_name: str, message: str, encoder: str = "ggml") -> None:
        self.failures[(name, type_name, encoder)] = message

    # ----- inspections (the inspector) ------------------------------------------------------
    def inspection(self, key: InspectKey) -> Inspection | None:
        return self.inspections.get(key)

    def inspected(self, key: InspectKey) -> bool:
        """True when the inspection is complete (the whole tensor) or failed."""
        insp = self.inspections.get(key)
        return (insp is not None and insp.full) or key in self.inspection_failures

    def add_inspection(self, insp: Inspection) -> InspectKey:
        key = (insp.name, insp.type, insp.compare_type, insp.encoder)
        self.inspections[key] = insp
        self.inspections.move_to_end(key)
        while len(self.inspections) > self.max_inspections:
            self.inspections.popitem(last=False)
        return key

    def add_inspection_failure(self, key: InspectKey, message: str) -> None:
        self.inspection_failures[key] = message
