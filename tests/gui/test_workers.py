"""GeneratorWorker and JobRunner: items reach the GUI thread in order; a cancelled job delivers nothing more."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from explorer.workers import GeneratorWorker, JobRunner
from quant_core.errors import QuantError

TIMEOUT_S = 10


class Gated:
    """A generator factory that yields 0, 1, 2, ... one item per ``step()``, and records its life."""

    def __init__(self, n: int = 5) -> None:
        self.n = n
        self.produced: list[int] = []
        self.closed = threading.Event()
        self.emitted = threading.Event()  # set once the worker asked for the item after the last one
        self._go = threading.Semaphore(0)

    def step(self, count: int = 1) -> None:
        for _ in range(count):
            self._go.release()

    def __call__(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                assert self._go.acquire(timeout=TIMEOUT_S), "test did not release the generator"
                self.produced.append(i)
                yield i
                self.emitted.set()  # the worker comes back here only after emitting item i
        finally:
            self.closed.set()


@pytest.fixture
def runner(qtbot):
    r = JobRunner()
    yield r
    r.cancel_all()
    r.wait(TIMEOUT_S * 1000)


def _record(worker: GeneratorWorker) -> dict[str, list]:
    seen: dict[str, list] = {"yielded": [], "errored": [], "cancelled": [], "finished": []}
    worker.signals.yielded.connect(seen["yielded"].append)
    worker.signals.errored.connect(seen["errored"].append)
    worker.signals.cancelled.connect(lambda: seen["cancelled"].append(True))
    worker.signals.finished.connect(lambda: seen["finished"].append(True))
    return seen


def test_every_item_arrives_in_order(qtbot, runner) -> None:
    gen = Gated(5)
    worker = GeneratorWorker(gen)
    seen = _record(worker)
    gen.step(5)
    with qtbot.waitSignal(worker.signals.finished, timeout=TIMEOUT_S * 1000):
        runner.start(worker)
    assert seen["yielded"] == [0, 1, 2, 3, 4]
    assert seen["cancelled"] == [] and seen["errored"] == [] and seen["finished"] == [True]
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_S * 1000)


def test_cancelled_worker_delivers_nothing_more(qtbot, runner) -> None:
    gen = Gated(5)
    worker = GeneratorWorker(gen)
    seen = _record(worker)
    gen.step()
    with qtbot.waitSignal(worker.signals.yielded, timeout=TIMEOUT_S * 1000):
        runner.start(worker)
    assert seen["yielded"] == [0]
    gen.emitted.clear()
    gen.step()
    # item 1 is emitted by the pool thread but not yet delivered: the GUI thread processes no
    # events until after cancel(), as when the user changes something while results are queued
    assert gen.emitted.wait(TIMEOUT_S)
    worker.cancel()
    with qtbot.waitSignal(worker.signals.finished, timeout=TIMEOUT_S * 1000):
        gen.step(3)
    assert seen["yielded"] == [0], "items were delivered after cancel()"
    assert seen["cancelled"] == [True] and seen["errored"] == []
    assert gen.closed.is_set(), "the generator was not closed (its finally did not run)"
    assert len(gen.produced) <= 3, "the worker kept pulling items after cancel()"


def test_worker_cancelled_before_it_runs_delivers_nothing(qtbot, runner) -> None:
    gen = Gated(3)
    worker = GeneratorWorker(gen)
    seen = _record(worker)
    worker.cancel()
    gen.step(3)
    with qtbot.waitSignal(worker.signals.finished, timeout=TIMEOUT_S * 1000):
        runner.start(worker)
    assert seen["yielded"] == [] and seen["cancelled"] == [True]
    assert gen.closed.is_set()


def _failing(error: Exception) -> Iterator[int]:
    yield 1
    raise error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (QuantError("tensor x: bad input"), "tensor x: bad input"),
        (MemoryError(), "out of memory"),
        (ZeroDivisionError("boom"), "unexpected error: ZeroDivisionError: boom"),
    ],
)
def test_errors_become_one_line(qtbot, runner, capsys, error: Exception, message: str) -> None:
    worker = GeneratorWorker(lambda: _failing(error))
    seen = _record(worker)
    with qtbot.waitSignal(worker.signals.finished, timeout=TIMEOUT_S * 1000):
        runner.start(worker)
    assert seen["yielded"] == [1] and seen["errored"] == [message] and seen["cancelled"] == []
    assert "\n" not in seen["errored"][0]
    capsys.readouterr()  # an unexpected error also prints its traceback for the developer


def test_runner_runs_one_job_at_a_time(qtbot, runner) -> None:
    first, second = Gated(1), Gated(1)
    w1, w2 = GeneratorWorker(first), GeneratorWorker(second)
    runner.start(w1)
    runner.start(w2)
    assert runner.busy
    second.step()  # the second job could run now, but the single pool thread is held by the first
    assert not second.closed.wait(0.3)
    assert second.produced == []
    with qtbot.waitSignal(w2.signals.finished, timeout=TIMEOUT_S * 1000):
        first.step()
    assert first.closed.is_set() and second.produced == [0]
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_S * 1000)
