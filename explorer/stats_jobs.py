"""Statistics jobs of a session: run one at a time, cancelled on change, stale results dropped.

:class:`StatsJobs` belongs to the session. The session says what to compute next (the
inspector's tensor first, then the tensors still unmeasured); this object starts that job a
moment after the last change, cancels it when the plan or selection changes again, and counts
generations so that a cancelled job's late results are dropped. Fresh results go into the
session's :class:`~explorer.stats_cache.StatisticsCache` and out through the session's signals.
An export takes the runner's place: statistics pause until it finishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from quant_core.evaluate import TensorEvaluation
from quant_core.inspect import Inspection

from .stats_cache import InspectKey
from .workers import GeneratorWorker

if TYPE_CHECKING:
    from .session import ExplorerSession

EVAL_DELAY_MS = 150
NextJob = tuple[GeneratorWorker, InspectKey | None]  # the job, and the inspection it computes (if any)


@dataclass(frozen=True)
class EvaluationFailure:
    """A tensor whose statistics could not be computed (shown once, not retried)."""

    name: str
    type: str
    message: str
    encoder: str = "ggml"


class StatsJobs(QObject):
    """The session's statistics job under way, its generation and the timer that starts the next one.

    ``next_job`` builds the next job (None: everything is known); ``reading`` tells whether an
    importance matrix is being read (the busy text then stays until the read ends).
    """

    def __init__(
        self, session: ExplorerSession, next_job: Callable[[], NextJob | None], reading: Callable[[], bool]
    ) -> None:
        super().__init__(session)
        self._session = session
        self._next_job = next_job
        self._reading = reading
        self._job: GeneratorWorker | None = None
        self._closed = False
        self._generation = 0
        self.timer = QTimer(self, singleShot=True, interval=EVAL_DELAY_MS)
        self.timer.timeout.connect(self._schedule)

    @property
    def active(self) -> bool:
        """A statistics or export job holds the runner."""
        return self._job is not None

    def restart(self) -> None:
        """Cancel the job under way and start the next one after a short delay."""
        self.cancel()
        self.timer.start()

    def cancel(self) -> None:
        """Cancel the job under way; results it still delivers are dropped."""
        self._generation += 1
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def start_export(self, worker: GeneratorWorker) -> None:
        """Pause statistics and run the export job (statistics resume when it finishes)."""
        self.cancel()
        self.timer.stop()
        self._job = worker
        worker.signals.finished.connect(self._on_export_finished)
        self._session.runner.start(worker)

    def shutdown(self) -> None:
        """Stop scheduling and cancel the job under way; late results are then ignored."""
        self._closed = True
        self.timer.stop()
        self.cancel()

    def _schedule(self) -> None:
        """Start the next compute job: the inspector first, then the overview."""
        session = self._session
        if self._closed or session.model is None or session.plan is None:
            return
        if self._job is not None and self._job.running:
            return
        next_job = self._next_job()
        if next_job is None:
            if not self._reading():
                session.busy_changed.emit("")
            return
        job, key = next_job
        self._job = job
        generation = self._generation
        job.signals.yielded.connect(lambda item, g=generation: self._on_result(item, g))
        job.signals.errored.connect(lambda message, g=generation, k=key: self._on_job_error(message, g, k))
        job.signals.finished.connect(lambda g=generation: self._on_job_finished(g))
        session.runner.start(job)

    def _on_result(self, item: object, generation: int) -> None:
        if self._closed or generation != self._generation:
            return  # stale: the plan or the selection changed since the job started
        session = self._session
        if isinstance(item, Inspection):
            session.stats.add_inspection(item)
            session.inspection = item
            session.inspection_ready.emit(item)
        elif isinstance(item, TensorEvaluation):
            session.stats.add_evaluation(item)
            session.stats_updated.emit([item.name])
        elif isinstance(item, EvaluationFailure):
            session.stats.add_failure(item.name, item.type, item.message, item.encoder)
            session.problems.refresh()  # one summary for all such tensors, not a dialog each

    def _on_job_error(self, message: str, generation: int, inspect_key: InspectKey | None) -> None:
        """A failed inspection is shown by the inspector (one line); other failures go to ``error``."""
        if self._closed:
            return
        if inspect_key is None:
            self._session.error.emit(message)
        elif generation == self._generation:
            self._session.stats.add_inspection_failure(inspect_key, message)
            self._session.inspection_failed.emit(message)

    def _on_job_finished(self, generation: int) -> None:
        if self._closed:
            return
        if generation == self._generation:
            self._job = None
        QTimer.singleShot(0, self, self._schedule)

    def _on_export_finished(self) -> None:
        if not self._closed:
            self._job = None
            self.timer.start()
