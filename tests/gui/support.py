"""Shared helpers for the GUI tests (fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import replace

from explorer.session import ExplorerSession

SMALL = dict(n_embd=256, n_layer=2, n_ff=512, n_vocab=256, n_head=4, n_head_kv=1, tied=False)
# n_ff = 544 is not a multiple of 256: ffn_down rows cannot take K-quants (fallback, disabled types)
ODD_FF = dict(SMALL, n_ff=544)
WAIT_MS = 60_000  # numba compiles kernels on first use


def wait_idle(qtbot, session: ExplorerSession, timeout_ms: int = WAIT_MS) -> None:
    """Until every scheduled statistics job has finished."""
    qtbot.waitUntil(lambda: session.idle, timeout=timeout_ms)


def reword_reasons(session: ExplorerSession, text: str = "reworded") -> None:
    """Replace the words of every tensor's reason (kinds and types unchanged), then notify the views."""
    plan = session.plan
    assert plan is not None
    tensors = tuple(replace(tp, why=replace(tp.why, text=text)) for tp in plan.tensors)
    session.plan = replace(plan, tensors=tensors)
    session.plan_changed.emit()
