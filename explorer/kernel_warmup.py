"""Compile cold numba kernels in the background when the window opens, with progress in the status bar.

Compiling in this process would hold the GIL for up to half a second at a time (the window
would stutter), so other processes, one per core, compile into the shared on-disk cache
(``python -m quant_core.warmup``), the current plan's types first, and a pool thread reads
their progress. Until those types are ready a gate job holds the session's job queue, so
statistics load the compiled kernels instead of compiling them a second time here.
"""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Iterator, Sequence

from PySide6.QtCore import QObject, QThreadPool
from PySide6.QtWidgets import QLabel, QMainWindow

from quant_core.warmup import (
    WarmupProgress,
    cold_types,
    iter_processes_progress,
    start_warmup_processes,
    stop_processes,
)

from .session import ExplorerSession
from .workers import GeneratorWorker

_GATE_POLL_S = 0.05


def _wait_for(event: threading.Event, stop: threading.Event) -> Iterator[None]:
    """Yield (so the worker can be cancelled) until ``event`` or ``stop`` is set."""
    while not (event.wait(_GATE_POLL_S) or stop.is_set()):
        yield None


def plan_types(session: ExplorerSession) -> list[str]:
    """The types the statistics of the session's plan use, most used first: the source tensors'
    types (their rows are read through them), then the planned ones."""
    if session.plan is None:
        return []
    tensors = [tp for tp in session.plan.tensors if tp.quantizable]
    sources = Counter(tp.source.src_type for tp in tensors)
    planned = Counter(tp.type for tp in tensors)
    names = [name for name, _ in sources.most_common()] + [name for name, _ in planned.most_common()]
    return list(dict.fromkeys(names))


class KernelWarmup(QObject):
    """Background warm-up of the kernels of ``types`` (default: all) for one window.

    Start it after the model opened (its plan's types compile first) and before the event
    loop runs the session's first statistics job; stop it when the application quits.
    """

    def __init__(self, window: QMainWindow, session: ExplorerSession, types: Sequence[str] | None = None) -> None:
        super().__init__(window)
        self.session = session
        self.types = types
        self.label = QLabel()
        self.label.setToolTip(
            "Compiling the quantization kernels once for this machine; "
            "statistics start as soon as the current plan's types are ready"
        )
        self.label.setVisible(False)
        window.statusBar().addPermanentWidget(self.label)
        self.last: WarmupProgress | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._procs: list[subprocess.Popen[str]] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._reader: GeneratorWorker | None = None
        self._waiting: set[str] = set()
        self._done = False

    @property
    def running(self) -> bool:
        """A warm-up process was started and has not finished."""
        return bool(self._procs) and not self._done

    def start(self) -> bool:
        """Start compiling what is not cached yet; False when every kernel already is."""
        cold = cold_types(self.types)
        if not cold or self._procs:
            return False
        first = [t for t in plan_types(self.session) if t in cold]
        self._waiting = set(first)
        self._procs = procs = start_warmup_processes(cold, first)
        reader = GeneratorWorker(lambda: iter_processes_progress(procs, len(cold)))
        reader.signals.yielded.connect(self._on_progress)
        reader.signals.errored.connect(self._on_error)
        reader.signals.finished.connect(self._on_finished)
        self._reader = reader  # the pool does not own it (no auto-delete): its signals must outlive the run
        self._pool.start(reader)
        if first:  # queued before the session's first job: statistics wait for these types
            self.session.runner.start(GeneratorWorker(lambda: _wait_for(self._ready, self._stop)))
        self._show(f"Preparing kernels… 0/{len(cold)}")
        return True

    def stop(self) -> None:
        """Stop the warm-up processes (what they compiled stays cached) and release the session."""
        self._stop.set()
        self._ready.set()
        stop_processes(self._procs)
        self._pool.waitForDone(5000)

    def _on_progress(self, progress: WarmupProgress) -> None:
        self.last = progress
        self._waiting.discard(progress.type_name)
        if not self._waiting:
            self._ready.set()
        self._show(f"Preparing kernels… {progress.done}/{progress.total}")

    def _on_error(self, message: str) -> None:
        if not self._stop.is_set():
            self.label.setToolTip(f"Kernels compile on first use instead: {message}")

    def _on_finished(self) -> None:
        self._ready.set()
        self._done = True
        self.label.setVisible(False)

    def _show(self, text: str) -> None:
        self.label.setText(text)
        self.label.setVisible(True)
