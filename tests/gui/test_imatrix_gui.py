"""Compute… beside Load…: the dialog computes through llama.cpp, loads the result as one undoable
step, cancels without leaving a file; Statistics… shows sortable per-tensor statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.dialogs.imatrix_dialog import ImatrixDialog
from explorer.panels.imatrix_stats import SORT_ROLE, ImatrixStatsDialog, show_imatrix_statistics
from explorer.panels.plan_panel import PlanPanel
from explorer.session import ExplorerSession
from quant_core.imatrix import load_imatrix, write_imatrix_gguf
from tests.core.quality_fixtures import sample_text, write_tiny_llama

DATA = Path(__file__).resolve().parents[1] / "data" / "imatrix"
N_CTX = 64


@pytest.fixture
def tiny(tmp_path):
    """A session on a tiny llama that llama.cpp can run, and a text of 12 chunks."""
    pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")
    s = ExplorerSession()
    assert s.open_model(write_tiny_llama(tmp_path / "tiny.gguf"))
    text = tmp_path / "text.txt"
    text.write_bytes(sample_text(12 * N_CTX) + b"\n")
    yield s, text
    s.shutdown()


def _dialog(qtbot, session, text: Path, out: Path | None, chunks: int = 0) -> ImatrixDialog:
    dialog = ImatrixDialog(session)
    qtbot.addWidget(dialog)
    dialog.text_edit.setText(str(text))
    dialog.ctx_spin.setValue(N_CTX)
    dialog.chunks_spin.setValue(chunks)
    dialog.output_edit.setText(str(out) if out else "")
    return dialog


def test_compute_loads_the_result_as_one_undoable_step(qtbot, tiny, tmp_path):
    session, text = tiny
    out = tmp_path / "tiny.imatrix.gguf"
    dialog = _dialog(qtbot, session, text, out, chunks=5)
    assert dialog.start()
    qtbot.waitUntil(lambda: session.state.options.imatrix == str(out), timeout=60_000)
    assert dialog.result is not None and dialog.result.chunks == 5
    assert load_imatrix(out).chunk_size == N_CTX
    qtbot.waitUntil(lambda: session.imatrix is not None, timeout=10_000)
    session.undo_stack.undo()
    assert session.state.options.imatrix is None


def test_default_output_is_a_new_file_in_the_cache_folder(qtbot, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANT_EXPLORER_QUALITY_CACHE", str(tmp_path / "cache"))
    session, text = tiny
    dialog = _dialog(qtbot, session, text, None, chunks=2)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=60_000)
    assert dialog.result.path.parent == tmp_path / "cache" / "imatrix"
    assert session.state.options.imatrix == str(dialog.result.path)


def test_cancel_writes_nothing_and_changes_nothing(qtbot, tiny, tmp_path):
    session, text = tiny
    text.write_bytes(sample_text(400 * N_CTX))
    out = tmp_path / "out" / "never.gguf"
    out.parent.mkdir()
    dialog = _dialog(qtbot, session, text, out)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=60_000)
    dialog.reject()  # the Cancel button
    qtbot.waitUntil(lambda: "Cancelled" in dialog.status.text(), timeout=60_000)
    assert dialog.isVisible() is False or dialog.result is None
    assert list(out.parent.iterdir()) == [] and session.state.options.imatrix is None
    assert dialog.compute_button.isEnabled()


def test_errors_show_in_one_line(qtbot, tiny, tmp_path):
    session, text = tiny
    text.write_bytes(b"too short")
    dialog = _dialog(qtbot, session, text, tmp_path / "x.gguf")
    assert dialog.start()
    qtbot.waitUntil(lambda: "at least" in dialog.status.text(), timeout=60_000)
    assert "\n" not in dialog.status.text() and not (tmp_path / "x.gguf").exists()
    dialog.text_edit.setText(str(tmp_path / "missing.txt"))
    assert not dialog.start() and "missing.txt" in dialog.status.text()


def test_plan_panel_buttons(qtbot, show, session, monkeypatch, tmp_path):
    panel = show(PlanPanel(session), 420, 900)
    assert panel.imatrix_compute.isEnabled() and not panel.imatrix_stats.isEnabled()
    opened = []
    monkeypatch.setattr(ImatrixDialog, "exec", lambda self: opened.append(self) or 0)
    qtbot.mouseClick(panel.imatrix_compute, Qt.LeftButton)
    assert len(opened) == 1 and opened[0].session is session
    path = tmp_path / "small.imatrix.gguf"
    sums = {tp.name: np.full(tp.source.n_per_row, 2.0, np.float32) for tp in session.plan.tensors if tp.quantizable}
    write_imatrix_gguf(path, sums, {name: np.array([64]) for name in sums}, chunk_size=64, datasets=["t"])
    with qtbot.waitSignal(session.imatrix_changed, timeout=10_000):
        session.set_imatrix(str(path))
    assert panel.imatrix_stats.isEnabled()
    shown = []
    monkeypatch.setattr("explorer.panels.plan_panel.show_imatrix_statistics", lambda parent, p: shown.append(p))
    qtbot.mouseClick(panel.imatrix_stats, Qt.LeftButton)
    assert shown == [str(path)]


def test_statistics_table_sorts_and_filters(qtbot):
    dialog = show_imatrix_statistics(None, str(DATA / "llama_imatrix.gguf"))
    assert isinstance(dialog, ImatrixStatsDialog)
    qtbot.addWidget(dialog)
    view, proxy = dialog.tensor_view, dialog.tensor_proxy
    assert proxy.rowCount() == 28
    share = next(i for i, c in enumerate(dialog.tensor_model.columns) if c.title == "Share")
    view.sortByColumn(share, Qt.DescendingOrder)
    values = [proxy.index(r, share).data(SORT_ROLE) for r in range(proxy.rowCount())]
    assert values == sorted(values, reverse=True) and proxy.index(0, 0).data() == "blk.0.ffn_down.weight"
    dialog.filter_edit.setText(r"ffn_(up|gate)")
    assert proxy.rowCount() == 8
    dialog.filter_edit.setText("(")  # invalid: the filter stays as it was
    assert proxy.rowCount() == 8
    assert dialog.layer_proxy.rowCount() == 4


def test_statistics_of_a_bad_file_is_one_message(qtbot, tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr("explorer.panels.imatrix_stats.QMessageBox.warning", lambda *a: messages.append(a[2]))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nonsense")
    assert show_imatrix_statistics(None, str(bad)) is None
    assert len(messages) == 1 and "\n" not in messages[0]


def test_file_menu_reaches_compute_and_statistics(qtbot, monkeypatch, tmp_path):
    from explorer.main_window import MainWindow

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    opened: list[str] = []
    monkeypatch.setattr(ImatrixDialog, "exec", lambda self: opened.append("compute") or 0)
    monkeypatch.setattr(
        "explorer.panels.plan_panel.show_imatrix_statistics", lambda parent, path: opened.append(f"stats {path}")
    )
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.session.open_model(write_tiny_llama(tmp_path / "tiny.gguf"))
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    actions = {a.text(): a for a in file_menu.actions()}
    actions["Compute importance &matrix…"].trigger()
    assert opened == ["compute"]
    actions["Importance matrix s&tatistics…"].trigger()  # nothing loaded: nothing to show
    assert opened == ["compute"]
    window.session.shutdown()
