"""Model quality of mixes, measured by llama.cpp in the background: the state behind the Quality panel.

The :class:`QualityTracker` belongs to the session. It keeps the measured mixes of the open model
on one evaluation text, runs measurements one after another on its own single-thread pool (so
the statistics jobs that every plan change cancels never cancel a measurement), reports one
overall progress for a batch, and caches every result in memory and on disk
(:mod:`explorer.quality_store`): measuring a mix again is instant. With :attr:`measure_speed` on,
each mix's prompt and generation speed is measured too (on the same temporary export, as
llama-bench does); a mix measured before without speed, or with other speed settings, gets only
its speed measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from quant_core.assets import DEMO_EVAL_TEXT
from quant_core.errors import QuantError
from quant_core.model import MetaField, Model
from quant_core.plan import Plan, build_plan
from quant_core.quality import (
    INSTALL_HINT,
    QualityProgress,
    QualityReport,
    SpeedReport,
    SpeedSettings,
    iter_plan_quality,
    iter_plan_speed,
    read_text_file,
    runtime_available,
)
from quant_core.size import project_size

from .quality_store import Measurement, MeasurementStore, context_key, describe, mix_key, preset_state
from .workers import GeneratorWorker, JobRunner

if TYPE_CHECKING:
    from .session import ExplorerSession, PlanState

REFERENCE_PRESETS = ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
DEFAULT_CTX = 512
_QUALITY_STAGES = ("base", "export", "candidate")
_SPEED_STAGES = ("pp", "tg")
_STAGE_NAMES = {
    "start": "starting",
    "base": "base model",
    "export": "export",
    "candidate": "candidate",
    "pp": "prompt speed",
    "tg": "generation speed",
}


@dataclass(frozen=True)
class _Pending:
    """A mix waiting to be measured, with everything its job needs captured when it was asked for."""

    key: str
    name: str
    kind: str
    state: PlanState
    model: Model
    plan: Plan
    imatrix: Any
    imatrix_keys: list[MetaField]
    file_bytes: int
    bpw: float
    quality: bool = True  # False: only the speed is missing
    speed: SpeedSettings | None = None

    @property
    def stages(self) -> tuple[str, ...]:
        first = _QUALITY_STAGES if self.quality else ("export",)
        return first + (_SPEED_STAGES if self.speed else ())


class QualityTracker(QObject):
    """Measured mixes of the session's model, and the queue of measurements under way.

    Signals
    -------
    measurements_changed : the list of measurements (or the text / setup they belong to) changed
    progress(float, str) : overall fraction of the current batch and what is being done
    running_changed(bool) : a batch started or ended (finished, failed or cancelled)
    failed(str) : one line saying why a measurement failed
    """

    measurements_changed = Signal()
    progress = Signal(float, str)
    running_changed = Signal(bool)
    failed = Signal(str)

    def __init__(self, session: ExplorerSession) -> None:
        super().__init__(session)
        self.session = session
        self.n_ctx = DEFAULT_CTX
        self.chunks: int | None = None
        self.measure_speed = False
        self.speed_settings = SpeedSettings()  # llama-bench's defaults
        self.text_path: Path | None = DEMO_EVAL_TEXT if DEMO_EVAL_TEXT.is_file() else None
        self.measurements: list[Measurement] = []
        self.store = MeasurementStore()
        self.runner = JobRunner(self)
        self._text: bytes | None = None
        self._context: str | None = None
        self._queue: list[_Pending] = []
        self._job: tuple[_Pending, GeneratorWorker] | None = None
        self._batch = (0, 0)  # done, total
        self._closed = False
        session.model_changed.connect(self._on_model_changed)

    # ----- state ------------------------------------------------------------------------------
    @staticmethod
    def available() -> bool:
        """Whether llama.cpp's runtime is installed (else measuring is impossible)."""
        return runtime_available()

    @staticmethod
    def install_hint() -> str:
        return f"Measuring quality needs llama.cpp's runtime: {INSTALL_HINT}"

    @property
    def running(self) -> bool:
        return self._job is not None or bool(self._queue)

    def measurement(self, key: str) -> Measurement | None:
        return next((m for m in self.measurements if m.key == key), None)

    def current_key(self) -> str | None:
        """The key the session's current plan would have (None without model or text)."""
        context = self._context_key()
        return None if context is None else mix_key(context, self.session.state)

    def set_text(self, path: str | Path | None) -> bool:
        """Measure on another text (None: the demo's held-out text); the list follows the text."""
        try:
            text = read_text_file(path) if path else None
        except QuantError as err:
            self.failed.emit(str(err))
            return False
        self.cancel()
        self.text_path = Path(path) if path else (DEMO_EVAL_TEXT if DEMO_EVAL_TEXT.is_file() else None)
        self._text = text
        self._reload()
        return True

    def set_chunks(self, chunks: int | None) -> None:
        """Evaluate at most ``chunks`` chunks of ``n_ctx`` tokens (None or 0: the whole text)."""
        chunks = chunks or None
        if chunks != self.chunks:
            self.cancel()
            self.chunks = chunks
            self._reload()

    def _text_bytes(self) -> bytes | None:
        if self._text is None and self.text_path is not None:
            try:
                self._text = read_text_file(self.text_path)
            except QuantError:
                return None
        return self._text

    def _context_key(self) -> str | None:
        if self._context is None:
            text, model = self._text_bytes(), self.session.model
            if text is None or model is None:
                return None
            self._context = context_key(model.path, text, self.n_ctx, self.chunks)
        return self._context

    def _on_model_changed(self) -> None:
        self.cancel()
        self._reload()

    def _reload(self) -> None:
        """The measurements stored for the current model, text and setup."""
        self._context = None
        context = self._context_key()
        self.measurements = self.store.load_context(context) if context else []
        self.measurements_changed.emit()

    # ----- requests ---------------------------------------------------------------------------
    def measure_current(self) -> bool:
        """Measure the session's current plan (instant when it was measured before)."""
        s = self.session
        if s.model is None or s.plan is None or s.size is None:
            return False
        item = self._pending(s.state, s.plan, s.imatrix, s.imatrix_keys, s.size.file_bytes, s.size.bpw)
        return item is not None and self._enqueue([item])

    def measure_presets(self, presets: tuple[str, ...] = REFERENCE_PRESETS) -> bool:
        """Measure llama.cpp's presets (with the loaded importance matrix) as reference points."""
        s = self.session
        if s.model is None:
            return False
        items = []
        for name in presets:
            state = preset_state(name, s.state.options)
            try:
                plan = build_plan(s.model, state.options, has_imatrix=s.imatrix is not None)
                size = project_size(s.model, plan, s.imatrix_keys)
            except QuantError as err:
                self.failed.emit(f"{name}: {err}")
                continue
            item = self._pending(state, plan, s.imatrix, s.imatrix_keys, size.file_bytes, size.bpw)
            if item is not None:
                items.append(item)
        return self._enqueue(items)

    def restore(self, key: str) -> bool:
        """Make a measured mix the session's plan again: one undoable step."""
        m = self.measurement(key)
        return m is not None and self.session.set_state(m.state, f"restore {m.name}")

    def cancel(self) -> None:
        """Stop the running measurement and forget the queued ones (nothing is added, no file left)."""
        self._queue.clear()
        if self._job is not None:
            self._job[1].cancel()
            self._job = None
        self._end_batch()

    def shutdown(self, msecs: int = 10000) -> None:
        """Cancel everything and wait for the worker thread (the window is closing)."""
        self._closed = True
        self.cancel()
        self.runner.cancel_all()
        self.runner.wait(msecs)

    def _pending(
        self, state: PlanState, plan: Plan, imatrix: Any, keys: list[MetaField], file_bytes: int, bpw: float
    ) -> _Pending | None:
        context = self._context_key()
        if context is None:
            self.failed.emit("no evaluation text: choose one with 'Text…'")
            return None
        name, kind = describe(state)
        assert self.session.model is not None
        return _Pending(
            mix_key(context, state), name, kind, state, self.session.model, plan, imatrix, list(keys), file_bytes, bpw
        )

    def _enqueue(self, items: list[_Pending]) -> bool:
        """Add what is not measured yet to the queue; cached results are added at once."""
        if not items:
            return False
        if not self.running:
            self._batch = (0, 0)
        queued = {p.key for p in self._queue} | ({self._job[0].key} if self._job else set())
        fresh = []
        for item in items:
            if item.key in queued:
                continue
            have = self.measurement(item.key)
            if have is None:
                have = self.store.load(item.key)
                if have is not None:
                    self._add(have)
            stale = have is None or not speed_measured_with(have.speed, self.speed_settings)
            speed = self.speed_settings if self.measure_speed and stale else None
            if have is None or speed is not None:
                fresh.append(replace(item, quality=have is None, speed=speed))
                queued.add(item.key)
        if not fresh:
            return True
        if not self.available():
            self.failed.emit(self.install_hint())
            return False
        was_running = self.running
        self._queue.extend(fresh)
        self._batch = (self._batch[0], self._batch[1] + len(fresh))
        if not was_running:
            self.running_changed.emit(True)
        self._next()
        return True

    def _add(self, m: Measurement) -> None:
        self.measurements.append(m)
        self.measurements_changed.emit()

    def _add_speed(self, key: str, speed: SpeedReport) -> None:
        """The measured mix ``key`` with its speed (stored with it)."""
        for i, m in enumerate(self.measurements):
            if m.key == key:
                self.measurements[i] = replace(m, speed=speed)
                self.store.save(self.measurements[i])
                self.measurements_changed.emit()
                return

    # ----- jobs -------------------------------------------------------------------------------
    def _next(self) -> None:
        if self._closed or self._job is not None:
            return
        if not self._queue:
            self._end_batch()
            return
        item = self._queue.pop(0)
        text = self._text_bytes()
        assert text is not None
        n_ctx, chunks, threads = self.n_ctx, self.chunks, self.session.threads
        worker = GeneratorWorker(lambda: _measure(item, text, n_ctx, chunks, threads))
        self._job = (item, worker)
        worker.signals.yielded.connect(lambda value, w=worker: self._on_item(w, value))
        worker.signals.errored.connect(lambda message, w=worker: self._on_error(w, message))
        worker.signals.finished.connect(lambda w=worker: self._on_finished(w))
        self._emit_progress(item, QualityProgress("start", 0, 1))
        self.runner.start(worker)

    def _is_current(self, worker: GeneratorWorker) -> bool:
        return not self._closed and self._job is not None and self._job[1] is worker

    def _on_item(self, worker: GeneratorWorker, value: object) -> None:
        if not self._is_current(worker):
            return
        item = self._job[0]  # type: ignore[index]
        if isinstance(value, QualityProgress):
            self._emit_progress(item, value)
        elif isinstance(value, QualityReport):
            m = Measurement(
                item.key, item.name, item.kind, item.state, value.candidate_bytes or item.file_bytes, item.bpw, value
            )
            self.store.save(m)
            self._add(m)
        elif isinstance(value, SpeedReport):
            self._add_speed(item.key, value)

    def _on_error(self, worker: GeneratorWorker, message: str) -> None:
        if self._is_current(worker):
            self.failed.emit(f"{self._job[0].name}: {message}")  # type: ignore[index]

    def _on_finished(self, worker: GeneratorWorker) -> None:
        if not self._is_current(worker):
            return
        self._job = None
        done, total = self._batch
        self._batch = (done + 1, total)
        self._next()

    def _emit_progress(self, item: _Pending, p: QualityProgress) -> None:
        done, total = self._batch
        stages = item.stages
        stage = stages.index(p.stage) if p.stage in stages else 0
        within = (stage + min(max(p.fraction, 0.0), 1.0)) / len(stages)
        overall = (done + within) / max(total, 1)
        count = f" ({done + 1}/{total})" if total > 1 else ""
        unit = ""
        if p.stage in ("base", "candidate"):
            unit = f" {p.done:.0f}/{p.total:.0f} chunks"
        elif p.stage in _SPEED_STAGES:
            unit = f" run {min(int(p.done) + 1, int(p.total))}/{p.total:.0f}"
        self.progress.emit(overall, f"{item.name}{count}: {_STAGE_NAMES.get(p.stage, p.stage)}{unit}")

    def _end_batch(self) -> None:
        if self._job is None and not self._queue and self._batch != (0, 0):
            self._batch = (0, 0)
            self.running_changed.emit(False)


def speed_measured_with(speed: SpeedReport | None, settings: SpeedSettings) -> bool:
    """Whether ``speed`` was measured with ``settings`` (threads 'auto' as resolved on this machine)."""
    return speed is not None and speed.settings == settings.resolved()


def _measure(
    item: _Pending, text: bytes, n_ctx: int, chunks: int | None, threads: int | None
) -> Iterator[QualityProgress | QualityReport | SpeedReport]:
    """The job of one mix: the core's plan measurement (temporary export, then llama.cpp)."""
    if item.speed is None:
        yield from iter_plan_quality(
            item.model, item.plan, text, item.imatrix, item.imatrix_keys, n_ctx=n_ctx, chunks=chunks, threads=threads
        )
        return
    quality_text = text if item.quality else None
    yield from iter_plan_speed(
        item.model, item.plan, item.speed, item.imatrix, item.imatrix_keys, threads, quality_text, n_ctx, chunks
    )
