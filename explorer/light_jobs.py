"""Short jobs off the GUI thread that must not wait behind the statistics job.

Reading an importance matrix and building the llama-quantize command line are plain Python
(no numba kernels), take tens to hundreds of milliseconds on a 7B-class model, and are wanted
at once: they run on their own one-thread pool, not on the :class:`~explorer.workers.JobRunner`
that runs the kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThreadPool

from .workers import GeneratorWorker


def _once(fn: Callable[..., Any], args: tuple) -> Iterator[Any]:
    yield fn(*args)


class LightJobs(QObject):
    """Run ``fn(*args)`` in a pool thread and hand the result (or its one-line error) to the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._workers: set[GeneratorWorker] = set()

    def run(
        self, fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], None], on_error: Callable[[str], None]
    ) -> GeneratorWorker:
        """Start the job; the callbacks run on the GUI thread."""
        worker = GeneratorWorker(lambda: _once(fn, args))
        worker.signals.yielded.connect(on_result)
        worker.signals.errored.connect(on_error)
        worker.signals.finished.connect(lambda w=worker: self._workers.discard(w))
        self._workers.add(worker)
        self.pool.start(worker)
        return worker

    def drop(self, worker: GeneratorWorker | None) -> None:
        """Forget a job whose result is no longer wanted (not started: never runs)."""
        if worker is None:
            return
        worker.cancel()
        if self.pool.tryTake(worker):
            self._workers.discard(worker)

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def shutdown(self, msecs: int = 10000) -> None:
        for worker in list(self._workers):
            self.drop(worker)
        self.pool.waitForDone(msecs)
