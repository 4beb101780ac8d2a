"""Run quant_core generators off the GUI thread, one job at a time, with cooperative cancel.

A :class:`GeneratorWorker` pulls items from a plain generator in a pool thread and hands each
one to the GUI thread through a queued signal. Cancelling only sets a flag: the worker stops
between two items and closes the generator (whose ``finally`` cleans up, e.g. a partial file).
Items already queued when :meth:`GeneratorWorker.cancel` is called are dropped on arrival, so
after ``cancel()`` returns (on the GUI thread) no ``yielded`` signal follows.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from quant_core.errors import QuantError


class WorkerSignals(QObject):
    """Signals of one worker (a QRunnable cannot own signals itself).

    Created on the GUI thread: ``_item``, emitted by the pool thread, is queued to
    :meth:`_deliver`, which runs on the GUI thread and re-emits it as ``yielded`` unless the
    worker was cancelled in the meantime.
    """

    yielded = Signal(object)
    errored = Signal(str)
    finished = Signal()
    cancelled = Signal()
    _item = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.dropping = False
        self._item.connect(self._deliver)

    @Slot(object)
    def _deliver(self, item: object) -> None:
        if not self.dropping:
            self.yielded.emit(item)


def _emit(signal: Any, *args: Any) -> None:
    """Emit from the pool thread; when the app has already deleted the signals' object (a job
    still running while the window closes) there is no one left to tell."""
    with contextlib.suppress(RuntimeError):
        signal.emit(*args)


class GeneratorWorker(QRunnable):
    """Iterate ``factory()`` in a pool thread; emit every item; stop early when cancelled."""

    def __init__(self, factory: Callable[[], Iterator[Any]], tag: Any = None) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.factory = factory
        self.tag = tag
        self.signals = WorkerSignals()
        self._abort = False
        self.running = False

    def cancel(self) -> None:
        """Ask the worker to stop after the current item; items not yet delivered are dropped."""
        self._abort = True
        self.signals.dropping = True

    @property
    def cancel_requested(self) -> bool:
        return self._abort

    def run(self) -> None:  # runs in the pool thread
        self.running = True
        gen = None
        try:
            gen = self.factory()
            for item in gen:
                if self._abort:
                    break
                _emit(self.signals._item, item)
        except QuantError as err:
            _emit(self.signals.errored, str(err))
        except MemoryError:
            _emit(self.signals.errored, "out of memory")
        except Exception as err:  # noqa: BLE001  a bug must not kill the app: report it in one line
            traceback.print_exc()
            _emit(self.signals.errored, f"unexpected error: {type(err).__name__}: {err}")
        finally:
            if gen is not None:
                try:
                    gen.close()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
            self.running = False
            if self._abort:
                _emit(self.signals.cancelled)
            _emit(self.signals.finished)


class JobRunner(QObject):
    """A single-thread pool: numba's parallel kernels must be launched from one thread at a time."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._workers: set[GeneratorWorker] = set()

    def start(self, worker: GeneratorWorker) -> GeneratorWorker:
        self._workers.add(worker)
        worker.signals.finished.connect(lambda w=worker: self._workers.discard(w))
        self.pool.start(worker)
        return worker

    def cancel_all(self) -> None:
        for w in list(self._workers):
            w.cancel()

    def wait(self, msecs: int = -1) -> bool:
        """Block until every job has finished (tests and shutdown)."""
        return self.pool.waitForDone(msecs)

    @property
    def busy(self) -> bool:
        return bool(self._workers)
