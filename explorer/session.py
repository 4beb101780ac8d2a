"""The one object that holds the explorer's state: model, plan inputs, plan, size, statistics.

Widgets never compute: they call session methods and redraw on its signals. Every plan change
is worked out completely (options checked, plan and size computed) before it goes on the undo
stack (:mod:`explorer.plan_state`), so a bad value is refused without changing anything.
Statistics are computed by workers, one job at a time, and a job whose plan or selection has
changed is cancelled and its late results dropped (:mod:`explorer.stats_jobs`); they are kept in
one :class:`~explorer.stats_cache.StatisticsCache`, which views read through the session. Reading
an importance matrix and building the llama-quantize command run as light jobs off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from quant_core.errors import QuantError
from quant_core.evaluate import TensorEvaluation, iter_evaluate
from quant_core.export import iter_export
from quant_core.ftypes import file_type
from quant_core.imatrix import Imatrix, load_for_quantize, tensor_importance
from quant_core.imatrix_fit import check_imatrix_fits
from quant_core.inspect import Inspection, iter_inspect
from quant_core.model import MetaField, Model, open_model
from quant_core.plan import Plan, QuantOptions, TensorPlan, build_plan, with_explicit
from quant_core.recipe import Recipe, check_options, readable_recipe
from quant_core.size import SizeReport, project_size
from quant_core.split import SplitSpec

from .light_jobs import LightJobs
from .llama_command import COMMAND_OUTPUT, LlamaCommand
from .plan_state import ImatrixKey, PlanCommand, PlanState, ResolvedState, imatrix_key, initial_state
from .stats_cache import InspectKey, StatisticsCache, eval_key
from .stats_jobs import EVAL_DELAY_MS as EVAL_DELAY_MS
from .stats_jobs import EvaluationFailure, NextJob, StatsJobs
from .workers import GeneratorWorker, JobRunner

COMPARISON_PRESETS = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")


def _evaluate_each(model: Model, plan: Plan, names: list[str], rows: int, imatrix: Any, threads: int | None):
    """iter_evaluate tensor by tensor, turning a tensor's failure into an item instead of an end."""
    for name in names:
        try:
            yield from iter_evaluate(model, plan, [name], rows, imatrix, threads)
        except QuantError as err:
            yield EvaluationFailure(name, plan.tensor(name).type, str(err), plan.tensor(name).encoder)


def _inspect(model: Model, tp: TensorPlan, compare: str | None, imatrix: Any, sample: int, threads: int | None):
    """iter_inspect with the importance values looked up in the job: a bad entry is reported."""
    values = tensor_importance(imatrix, tp.source)
    yield from iter_inspect(model, tp.source, tp.type, compare, values, sample, threads, tp.encoder)


class ExplorerSession(QObject):
    """State and operations of one explorer window."""

    model_changed = Signal()
    plan_changed = Signal()
    stats_updated = Signal(list)
    inspection_ready = Signal(object)
    selection_changed = Signal(list)
    imatrix_changed = Signal()
    inspection_failed = Signal(str)
    command_ready = Signal(str)
    busy_changed = Signal(str)
    error = Signal(str)
    status = Signal(str)  # a one-line note for the status bar

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model: Model | None = None
        self.state = PlanState(QuantOptions())
        self.plan: Plan | None = None
        self.size: SizeReport | None = None
        self.preset_sizes: dict[str, int] = {}
        self.imatrix: Imatrix | None = None
        self.imatrix_keys: list[MetaField] = []
        self.recipe_path: Path | None = None  # the recipe last loaded or saved
        self.selected: list[str] = []
        self.compare_type: str | None = None
        self.inspection: Inspection | None = None
        self.threads: int | None = None
        self.busy_text = ""
        self.sample_rows = 64
        self.undo_stack = QUndoStack(self)
        self.runner = JobRunner(self)
        self.light = LightJobs(self)
        self.stats = StatisticsCache()
        self._imatrices: dict[ImatrixKey, tuple[Imatrix, list[MetaField]]] = {}
        self._reading: tuple[ImatrixKey, GeneratorWorker] | None = None
        self._resolved: ResolvedState | None = None
        self._command = LlamaCommand(self)
        self._closed = False
        self._stats_jobs = StatsJobs(self, self._next_job, lambda: self._reading is not None)
        self.busy_changed.connect(lambda text: setattr(self, "busy_text", text))
        from .quality import QualityTracker  # here: explorer.quality imports PlanState from this module

        self.quality = QualityTracker(self)
        from .problems import ProblemList

        self.problems = ProblemList(self)

    # ----- model --------------------------------------------------------------------------
    def open_model(self, path: str | Path) -> bool:
        """Open a GGUF file; on failure emit ``error`` and keep the current model."""
        try:
            model = open_model(path)
        except QuantError as err:
            self.error.emit(str(err))
            return False
        self._stats_jobs.cancel()
        self._drop_reading()
        self.model = model
        self.imatrix, self.imatrix_keys = None, []
        self._imatrices.clear()
        self._resolved = None
        self.stats.clear()
        self.selected, self.inspection = [], None
        self.undo_stack.clear()
        # a GUI user who opens an already-quantized file means to requantize it (the Plan panel
        # shows the switch, and the export dialog says the source is quantized)
        self.state = initial_state(model)
        self._apply_state(self.state, notify=False)
        self._update_preset_sizes()
        self.model_changed.emit()
        self.plan_changed.emit()
        self.selection_changed.emit([])
        return True

    # ----- plan changes (all undoable) ----------------------------------------------------
    def set_state(self, state: PlanState, text: str, merge_key: object = None) -> bool:
        """Validate and apply a new plan state as one undoable step.

        An importance matrix not read yet is read in the background first (True: the change is
        under way); any other problem is reported through ``error`` and nothing changes.
        Consecutive steps with the same non-None ``merge_key`` merge into one undo step.
        """
        if self.model is None or state == self.state:
            return False
        key = imatrix_key(state.options)
        if key is not None and key not in self._imatrices:
            return self._read_imatrix(key, state, text)
        try:
            self._resolved = self._resolve(state)
        except QuantError as err:
            self.error.emit(str(err))
            return False
        self.undo_stack.push(PlanCommand(self._apply_state, self.state, state, text, merge_key))
        return True

    def _resolve(self, state: PlanState) -> ResolvedState:
        """Everything ``state`` implies (raises QuantError): computed before anything changes."""
        assert self.model is not None
        if self._resolved is not None and self._resolved.state == state:
            return self._resolved
        check_options(state.options)
        imatrix, keys = self._imatrix_for(state.options)
        if imatrix is not None:
            check_imatrix_fits(self.model, imatrix)  # another model's matrix is refused, not applied
        plan = build_plan(self.model, state.options, state.explicit_map, has_imatrix=imatrix is not None)
        if state.auto_mixed or state.why:
            plan = with_explicit(plan, state.explicit_map, auto_mixed=state.auto_mixed, why=dict(state.why))
        return ResolvedState(state, imatrix, keys, plan, project_size(self.model, plan, keys))

    def set_preset(self, preset: str) -> bool:
        name = file_type(preset).name
        return self.set_state(replace(self.state, options=replace(self.state.options, preset=name)), f"preset {name}")

    def set_options(self, text: str, **changes: Any) -> bool:
        return self.set_state(replace(self.state, options=replace(self.state.options, **changes)), text)

    def set_rules(self, rules: tuple[tuple[str, str], ...]) -> bool:
        return self.set_options("edit rules", tensor_types=rules)

    def set_types(self, names: Iterable[str], type_name: str) -> bool:
        """Give the named tensors an explicit type (tensors that cannot take it are skipped)."""
        assert self.plan is not None
        state, applied, skipped = self.state.with_types(self.plan, names, type_name, self.imatrix)
        if not applied:
            self.error.emit(f"{type_name} cannot be used for the selected tensors")
            return False
        done = self.set_state(state, f"{type_name} for {len(applied)} tensor(s)")
        if done and skipped:
            self.status.emit(
                f"{type_name} set on {len(applied)} tensor(s); {len(skipped)} kept their type: " + ", ".join(skipped)
            )
        return done

    def reset_types(self, names: Iterable[str]) -> bool:
        """Back to the preset's choice for the named tensors."""
        return self.set_state(self.state.without_types(names), "reset to preset")

    def _apply_state(self, state: PlanState, notify: bool = True) -> None:
        """Make ``state`` current (undo/redo of a state that was resolved before cannot fail)."""
        resolved = self._resolve(state)
        self._resolved = None
        self.state = state
        imatrix_changed = resolved.imatrix is not self.imatrix
        if imatrix_changed:
            self.imatrix, self.imatrix_keys = resolved.imatrix, resolved.imatrix_keys
            self.stats.clear()
        self.plan, self.size = resolved.plan, resolved.size
        self.inspection = self._cached_inspection()
        if notify:
            self.plan_changed.emit()
            if imatrix_changed:
                self.imatrix_changed.emit()
        self._restart_evaluation()

    def _update_preset_sizes(self) -> None:
        assert self.model is not None
        sizes = {}
        for name in COMPARISON_PRESETS:
            plan = build_plan(self.model, replace(self.state.options, preset=name, tensor_types=()), has_imatrix=False)
            sizes[name] = project_size(self.model, plan, self.imatrix_keys).file_bytes
        self.preset_sizes = sizes

    # ----- imatrix and recipes ------------------------------------------------------------
    def set_imatrix(self, path: str | None) -> bool:
        """Use (or with None, stop using) an importance matrix: an undoable plan change."""
        return self.set_options("importance matrix" if path else "no importance matrix", imatrix=path or None)

    def forget_imatrix(self, path: str) -> None:
        """Drop what was read from ``path`` (about to be written again): the next use reads it anew."""
        self._imatrices = {k: v for k, v in self._imatrices.items() if k[0] != path}

    def _imatrix_for(self, options: QuantOptions) -> tuple[Imatrix | None, list[MetaField]]:
        """The importance matrix the options name, read once per (path, filters); raises QuantError."""
        key = imatrix_key(options)
        if key is None:
            return None, []
        if key not in self._imatrices:
            self._imatrices[key] = load_for_quantize(*key)
        return self._imatrices[key]

    def _read_imatrix(self, key: ImatrixKey, state: PlanState, text: str) -> bool:
        """Read an importance matrix in a light job, then apply ``state`` if nothing changed meanwhile."""
        if not Path(key[0]).is_file():  # nothing to wait for: the core says why at once
            try:
                self._imatrix_for(state.options)
            except QuantError as err:
                self.error.emit(str(err))
                return False
            return self.set_state(state, text)
        self._drop_reading()
        model, base = self.model, self.state

        def current() -> bool:  # False for a read that was dropped for a newer one
            return self._reading is not None and self._reading[1] is worker

        def done(result: tuple[Imatrix, list[MetaField]]) -> None:
            if current():
                self._end_reading()
                self._imatrices[key] = result
                if not self._closed and self.model is model and self.state == base:
                    self.set_state(state, text)

        def failed(message: str) -> None:
            if current():
                self._end_reading()
                if not self._closed:
                    self.error.emit(message)

        self.busy_changed.emit(f"reading importance matrix {Path(key[0]).name}")
        worker = self.light.run(load_for_quantize, *key, on_result=done, on_error=failed)
        self._reading = (key, worker)
        return True

    def _drop_reading(self) -> None:
        if self._reading is not None:
            self.light.drop(self._reading[1])
            self._end_reading()

    def _end_reading(self) -> None:
        self._reading = None
        if not self._stats_jobs.active and not self._closed:
            self.busy_changed.emit("")

    def recipe(self) -> Recipe:
        """The current plan as a readable recipe: compact rules ahead of the user's, same types."""
        if self.model is None or self.plan is None:
            return Recipe(self.state.options, self.state.explicit_map)
        return readable_recipe(self.model, self.plan)

    def save_recipe(self, path: str | Path) -> bool:
        try:
            self.recipe().save(path)
        except OSError as err:
            self.error.emit(f"cannot save recipe {path}: {err.strerror}")
            return False
        self.recipe_path = Path(path)
        return True

    def load_recipe(self, path: str | Path) -> bool:
        try:
            recipe = Recipe.load(path)
        except QuantError as err:
            self.error.emit(str(err))
            return False
        self.recipe_path = Path(path)
        return self.set_state(PlanState(recipe.options, tuple(sorted(recipe.explicit.items()))), "load recipe")

    def input_paths(self) -> tuple[str | Path, ...]:
        """The files besides the model an export must not overwrite: importance matrix, recipe."""
        return tuple(p for p in (self.state.options.imatrix, self.recipe_path) if p)

    def llama_command(self, output: str = COMMAND_OUTPUT) -> str:
        """The llama-quantize command line of the current plan (the last one built, when fresh)."""
        return self._command.text(output)

    def request_llama_command(self) -> None:
        """Build the command line of the current plan in a light job; ``command_ready`` delivers it."""
        self._command.request()

    @property
    def closed(self) -> bool:
        """True after :meth:`shutdown`: late job results are dropped."""
        return self._closed

    # ----- selection and statistics -------------------------------------------------------
    def select(self, names: list[str]) -> None:
        if names == self.selected:
            return
        self.selected = list(names)
        self.inspection = self._cached_inspection()
        self.selection_changed.emit(self.selected)
        self._restart_evaluation()

    def set_compare_type(self, type_name: str | None) -> None:
        self.compare_type = type_name or None
        self.inspection = self._cached_inspection()
        self._restart_evaluation()

    def evaluation(self, name: str) -> TensorEvaluation | None:
        """The best known statistics of a tensor at its planned type (None until computed)."""
        if self.plan is None:
            return None
        return self.stats.evaluation(*eval_key(self.plan.tensor(name)))

    def inspection_key(self) -> InspectKey | None:
        """What the inspector shows: first selected tensor, its planned type, the compared type."""
        if not self.selected or self.plan is None:
            return None
        try:
            tp = self.plan.tensor(self.selected[0])
        except QuantError:  # a selection from before the tensors changed
            return None
        return (tp.name, tp.type, self.compare_type, tp.encoder) if tp.quantizable else None

    def inspection_problem(self) -> str | None:
        """Why the current inspection failed (one line), or None."""
        key = self.inspection_key()
        return None if key is None else self.stats.inspection_failures.get(key)

    def _cached_inspection(self) -> Inspection | None:
        key = self.inspection_key()
        return None if key is None else self.stats.inspection(key)

    def _restart_evaluation(self) -> None:
        self._stats_jobs.restart()

    @property
    def _timer(self) -> QTimer:
        """The timer that starts the next statistics job (tools disconnect it to keep jobs off)."""
        return self._stats_jobs.timer

    def _next_job(self) -> NextJob | None:
        """The next statistics job: the inspector's tensor first, then the tensors not measured yet."""
        job = self._inspect_job()
        if job is not None:
            return job, self.inspection_key()
        job = self._overview_job()
        return None if job is None else (job, None)

    def _inspect_job(self) -> GeneratorWorker | None:
        key = self.inspection_key()
        if key is None or self.stats.inspected(key):
            return None
        tp = self.plan.tensor(self.selected[0])  # type: ignore[union-attr]
        model, imatrix, threads = self.model, self.imatrix, self.threads
        compare, sample = self.compare_type, self.sample_rows
        self.busy_changed.emit(f"inspecting {tp.name}")
        return GeneratorWorker(lambda: _inspect(model, tp, compare, imatrix, sample, threads))

    def _overview_job(self) -> GeneratorWorker | None:
        plan = self.plan
        assert plan is not None
        missing = [tp.name for tp in plan.tensors if tp.quantizable and not self.stats.known(*eval_key(tp))]
        if not missing:
            return None
        model, imatrix, threads, rows = self.model, self.imatrix, self.threads, self.sample_rows
        self.busy_changed.emit(f"measuring error of {len(missing)} tensor(s)")
        return GeneratorWorker(lambda: _evaluate_each(model, plan, missing, rows, imatrix, threads))

    # ----- export -------------------------------------------------------------------------
    def export_worker(
        self,
        path: str | Path,
        threads: int | None = None,
        split: SplitSpec | None = None,
        then: Callable[[], Any] | None = None,
    ) -> GeneratorWorker:
        """A worker writing the current plan to ``path`` (in parts with ``split``); see :meth:`start_export`.

        ``then``, if given, runs in the worker after the file is written; its result is the last item.
        """
        assert self.model is not None and self.plan is not None
        model, plan, imatrix, keys = self.model, self.plan, self.imatrix, self.imatrix_keys

        def job() -> Iterator[Any]:
            yield from iter_export(model, plan, path, imatrix, threads, keys, split)
            if then is not None:
                yield then()

        return GeneratorWorker(job)

    def start_export(self, worker: GeneratorWorker) -> None:
        """Pause statistics and run the export job (statistics resume when it finishes)."""
        self._stats_jobs.start_export(worker)

    @property
    def idle(self) -> bool:
        """Nothing pending: no importance matrix being read, every statistics job done, none scheduled."""
        jobs = self._stats_jobs
        return self._reading is None and not jobs.active and not jobs.timer.isActive() and not self.busy_text

    def shutdown(self) -> None:
        """Stop all work: used when the window closes (late results are then ignored)."""
        self._closed = True
        self._stats_jobs.shutdown()
        self.runner.cancel_all()
        self.light.shutdown()
        self.runner.wait(10000)
