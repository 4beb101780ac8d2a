"""The session keeps only results of its current job: a result that arrives after a change is dropped.

The statistics job is replaced by a gated generator so the test decides when its result is
emitted, and changes the selection while that result is still queued for the GUI thread.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import explorer.session as session_module
from quant_core.evaluate import TensorEvaluation
from quant_core.stats import ErrorStats

from .support import wait_idle

pytestmark = pytest.mark.gui

TIMEOUT_S = 30
MARK = 123.0  # an rmse no real evaluation of these weights has


class GatedEvaluation:
    """Replaces the session's first overview job: yields one marked result when told to."""

    def __init__(self) -> None:
        self.started, self.go, self.emitted, self.hold = (threading.Event() for _ in range(4))
        self.calls = 0
        self.name = self.type = ""
        self._real = session_module._evaluate_each

    def __call__(self, model, plan, names, rows, imatrix, threads):
        self.calls += 1
        if self.calls > 1:
            return self._real(model, plan, names, rows, imatrix, threads)
        self.name, self.type = names[0], plan.tensor(names[0]).type
        return self._first(plan.tensor(self.name))

    def _first(self, tp):
        self.started.set()
        assert self.go.wait(TIMEOUT_S)
        yield TensorEvaluation(tp.name, tp.type, _marked_stats(), 1, tp.source.n_rows)
        self.emitted.set()  # the worker comes back here only after emitting the result
        assert self.hold.wait(TIMEOUT_S)


def _marked_stats() -> ErrorStats:
    edges = np.linspace(-256.0, 256.0, 5)
    return ErrorStats(1, MARK, 1.0, MARK, 0.0, 0.0, None, np.array([0, 0, 1, 0]), edges)


def _run_first_job(qtbot, session, gate: GatedEvaluation, change) -> None:
    """Start the gated job, let it emit its result, apply ``change`` before the result arrives."""
    qtbot.waitUntil(gate.started.is_set, timeout=TIMEOUT_S * 1000)
    gate.go.set()
    assert gate.emitted.wait(TIMEOUT_S)  # the result is queued; no GUI event was processed since
    change()
    gate.hold.set()
    wait_idle(qtbot, session)


@pytest.fixture
def gate(session, monkeypatch) -> GatedEvaluation:
    g = GatedEvaluation()
    monkeypatch.setattr(session_module, "_evaluate_each", g)
    return g


def test_result_of_the_current_job_is_kept(qtbot, session, gate) -> None:
    _run_first_job(qtbot, session, gate, change=lambda: None)
    assert session.evaluation(gate.name).stats.rmse == MARK


def test_late_result_of_a_superseded_job_is_dropped(qtbot, session, gate) -> None:
    updates: list[list[str]] = []
    session.stats_updated.connect(updates.append)

    def change() -> None:
        session.select([gate.name])  # a new selection supersedes the running job

    _run_first_job(qtbot, session, gate, change)
    kept = session.evaluation(gate.name)
    assert kept is not None and kept.stats.rmse != MARK, "the superseded job's result was stored"
    assert gate.calls >= 2, "the overview was not recomputed after the change"
    assert session.inspection is not None and session.inspection.name == gate.name
    assert [gate.name] in updates  # from the recomputation, not from the dropped result


def test_late_result_after_a_plan_change_is_dropped(qtbot, session, gate) -> None:
    def change() -> None:
        assert session.set_types([gate.name], "Q8_0")

    _run_first_job(qtbot, session, gate, change)
    assert session.evaluation(gate.name).type == "Q8_0"
    assert session.reset_types([gate.name])  # back to the type the dropped result was for
    wait_idle(qtbot, session)
    back = session.evaluation(gate.name)
    assert back.type == gate.type and back.stats.rmse != MARK, "the superseded job's result was stored"
